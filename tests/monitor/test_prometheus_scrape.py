"""A real Prometheus (tests/prometheus_server.py) scraping `mlops serve churn` and the
Pushgateway that `mlops monitor churn --pushgateway` pushed to, as a cluster's Prometheus
Operator scrapes them, with the generated PrometheusRule's groups loaded: every query of
the generated Grafana dashboard and every alert expression returns series. A name or a
label that the generated queries select but no process exports (or no scrape adds)
fails here. churn runs on Triton in its cluster, so its queries read Triton's series,
which `mlops serve` exports as Triton does (runtime/serving/triton_metrics.py). The
champion it serves, and whose drift reference monitor reads, is recorded as apply
records it, from a few training steps without Ray.

Scrape labels. The operator turns the generated ServiceMonitor into a scrape job whose
targets carry job (the Service's name, or its `jobLabel`), namespace, service, pod,
container, endpoint (the port's name) and the pod's `podTargetLabels`. `operator_target`
derives them from the generated ServiceMonitor, Service, Deployment and Rollout (whose
stable pods carry its `stableMetadata`) and gives them to a static target. The
Pushgateway is scraped as its Helm chart's ServiceMonitor does (honorLabels), so the
pushed grouping key (job, namespace, model) wins over the Pushgateway's own labels.
Scrapes and rule evaluations run every second instead of the manifests' 30s.

Alerts. A healthy system must not fire, so each alert's expression is asked with its
threshold comparison made a `bool` one (`X > bool 0.05`): the same left side, each of its
series answered with 0 or 1 instead of filtered out. That returns series exactly when
the left side does, i.e. when the rule reads live series. The rules themselves are
loaded too: every one must evaluate without error.

Grafana's `$__rate_interval` (and `$__interval`, `$__range`) become RATE_WINDOW; any
other `$variable` fails, so a new one gets a deliberate substitution. The CPU and memory
panels read cAdvisor's series (the kubelet's, not a process of ours): they are left out,
and the test pins that they are the only queries left out.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import copy_project, run_cli
from tests.promql import series_names
from tests.prometheus_server import MISSING, Prometheus, Pushgateway, free_port, get

pytestmark = [
    pytest.mark.slow,
    # CI installs them (`make tools`): missing there is a failure, not a skip.
    pytest.mark.skipif(bool(MISSING) and os.environ.get("CI") != "true",
                       reason=f"{' and '.join(MISSING)} missing: `make tools` installs them (apt)"),
]

SCRAPE_S = 1
# Grafana's $__rate_interval: max($__interval + scrape interval, 4 scrape intervals).
RATE_WINDOW = f"{4 * SCRAPE_S}s"
GRAFANA_WINDOWS = {"$__rate_interval": RATE_WINDOW, "$__interval": f"{SCRAPE_S}s", "$__range": "5m"}
INFRASTRUCTURE = {"container_cpu_usage_seconds_total", "container_memory_working_set_bytes", "DCGM_FI_DEV_GPU_UTIL"}
TRAIN_ROWS = 4000  # the model and the drift reference see these rows of churn.csv; the rest is "current"
SERIES_DEADLINE_S = 30.0
ANSWERED = 40  # requests the model answers (and two it turns away)


@dataclass
class Stack:
    generated: Path  # generate's output for churn (dev) in the project
    gateway: Pushgateway
    prometheus: Prometheus
    monitor_output: str  # stdout and stderr of the push


# --- the champion, without Ray: what apply records, from a few full-batch steps ---------
def _register_champion(root: Path) -> list[str]:
    """Version 1 of churn as `mlops apply churn` leaves it: the ONNX file and the drift
    reference in one MLflow run, registered, alias champion, apply's model repository.
    Returns the model's input columns."""
    from framework import api
    from framework.runtime import tracking
    from framework.runtime.training import reference
    from framework.runtime.training.export import export_onnx
    from framework.runtime.training.features import FeaturePipeline
    from framework.runtime.training.model import predict
    from framework.runtime.training.run import fill_model_repository
    from tests.serving.conftest import train_net

    recipe = api.load_recipe("churn", project=root).recipe
    state = root / ".mlops"
    train = pd.read_csv(root / "data" / "churn.csv").iloc[:TRAIN_ROWS]
    pipeline = FeaturePipeline.fit(recipe, train)
    net = train_net(pipeline, seed=1)
    onnx = export_onnx(net, recipe, pipeline, root / "staged" / "model.onnx")
    frame, schema = reference.build(recipe, pipeline, train, lambda x: predict(net, x), root)
    with tracking.Tracker(recipe, state, run_name="champion") as run:
        reference.log(run, frame, schema)
        run.log_artifact_file(onnx, "model")
        version = tracking.register(run, "model", recipe.registered_model,
                                    tags={reference.TAG: f"runs:/{run.run_id}/{reference.ARTIFACT_DIR}"})
    tracking.set_alias(recipe.registered_model, "champion", version, uri=run.uri)
    fill_model_repository(recipe, state, version, onnx)
    return list(recipe.data.features)


# --- what the Prometheus Operator makes of the generated manifests ----------------------
def _manifests(generated: Path) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for path in sorted((generated / "k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if doc:
                found.setdefault(doc["kind"], []).append(doc)
    return found


def _operator_label(name: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)  # how the operator turns a pod label into a target label


def operator_target(generated: Path) -> tuple[dict[str, str], dict]:
    """(target labels, scrape settings) of the serving pod's metrics endpoint, as the
    operator's scrape job for the generated ServiceMonitor gives them."""
    docs = _manifests(generated)
    (monitor,) = docs["ServiceMonitor"]
    spec = monitor["spec"]
    (endpoint,) = spec["endpoints"]
    # Relabelings would change the labels below: mirror them here before generating any.
    assert not endpoint.get("relabelings") and not endpoint.get("metricRelabelings"), endpoint
    namespaces = spec.get("namespaceSelector", {}).get("matchNames", [monitor["metadata"]["namespace"]])
    (service,) = [s for s in docs["Service"] if s["metadata"]["namespace"] in namespaces
                  and spec["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items()
                  and any(p["name"] == endpoint["port"] for p in s["spec"]["ports"])]
    (deployment,) = [d for d in docs["Deployment"]
                     if service["spec"]["selector"].items() <= d["spec"]["template"]["metadata"]["labels"].items()]
    template = deployment["spec"]["template"]
    pod_labels, owner = dict(template["metadata"]["labels"]), deployment["metadata"]["name"]
    for rollout in docs.get("Rollout", []):  # a Rollout runs the Deployment's pods (workloadRef)
        if rollout["spec"].get("workloadRef", {}).get("name") == owner:
            owner = rollout["metadata"]["name"]
            strategy = rollout["spec"]["strategy"]
            stable = strategy.get("canary", {}).get("stableMetadata") or strategy.get("blueGreen", {}).get("activeMetadata")
            pod_labels.update((stable or {}).get("labels", {}))
    target_port = next(p["targetPort"] for p in service["spec"]["ports"] if p["name"] == endpoint["port"])
    (container,) = [c["name"] for c in template["spec"]["containers"]
                    if any(target_port in (p.get("name"), p.get("containerPort")) for p in c.get("ports", []))]
    meta = service["metadata"]
    labels = {
        "job": meta["labels"].get(spec["jobLabel"], meta["name"]) if spec.get("jobLabel") else meta["name"],
        "namespace": meta["namespace"], "service": meta["name"], "endpoint": endpoint["port"],
        "pod": f"{owner}-7c9d8b6f5d-x2x5z", "container": container,
    }
    labels |= {_operator_label(k): pod_labels[k] for k in spec.get("podTargetLabels", []) if k in pod_labels}
    labels |= {_operator_label(k): meta["labels"][k] for k in spec.get("targetLabels", []) if k in meta["labels"]}
    scrape = {"metrics_path": endpoint.get("path", "/metrics"), "scheme": endpoint.get("scheme", "http"),
              "honor_labels": bool(endpoint.get("honorLabels", False))}
    return labels, scrape


def pushgateway_target() -> dict[str, str]:
    """The Pushgateway's own target labels, from the address the drift CronJob pushes to
    (http://<service>.<namespace>.svc:<port>): what its chart's ServiceMonitor gives."""
    from framework.contracts.metrics import PUSHGATEWAY_ADDRESS

    service, namespace = urlparse(PUSHGATEWAY_ADDRESS).hostname.split(".")[:2]
    return {"job": service, "namespace": namespace, "service": service, "endpoint": "http",
            "pod": f"{service}-5f7d9c8b4-q8w2r", "container": "pushgateway"}


def scrape_config(generated: Path, serve_port: int, gateway_port: int) -> dict:
    labels, scrape = operator_target(generated)
    return {
        "global": {"scrape_interval": f"{SCRAPE_S}s", "evaluation_interval": f"{SCRAPE_S}s"},
        "scrape_configs": [
            {"job_name": f"serviceMonitor/{labels['namespace']}/{labels['service']}/0", **scrape,
             "static_configs": [{"targets": [f"127.0.0.1:{serve_port}"], "labels": labels}]},
            {"job_name": "serviceMonitor/monitoring/prometheus-pushgateway/0", "honor_labels": True,
             "static_configs": [{"targets": [f"127.0.0.1:{gateway_port}"], "labels": pushgateway_target()}]},
        ],
    }


def rule_groups(generated: Path) -> list[dict]:
    (rule,) = _manifests(generated)["PrometheusRule"]
    return rule["spec"]["groups"]


# --- mlops serve and its traffic --------------------------------------------------------
def _start_serve(root: Path, port: int, log: Path) -> subprocess.Popen:
    with open(log, "wb") as stderr:  # a file, not a pipe nobody reads while it runs
        return subprocess.Popen(
            [sys.executable, "-m", "framework.cli", "serve", "churn", "--port", str(port)], cwd=root,
            stdout=subprocess.PIPE, stderr=stderr, text=True, start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )


def _wait_listening(process: subprocess.Popen, log: Path) -> None:
    first = process.stdout.readline()  # said once it listens
    assert first.startswith("serving churn"), first + log.read_text(errors="replace")[-3000:]


def _stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()


def send_traffic(port: int, rows: pd.DataFrame, features: list[str]) -> None:
    """A request per row (curl's form: columns by name) and a few the server turns away."""
    import httpx

    base = f"http://127.0.0.1:{port}/v2/models/churn"
    with httpx.Client(timeout=10) as client:
        for record in rows[features].to_dict("records"):
            record = {k: (None if pd.isna(v) else v) for k, v in record.items()}
            response = client.post(f"{base}/infer", json=[record])
            assert response.status_code == 200, response.text
        assert client.post(f"{base}/infer", content=b"{").status_code == 400
        assert client.post(f"{base}/infer", json=[{**record, "shoe_size": 44}]).status_code == 400


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    assert not MISSING, f"{' and '.join(MISSING)} missing: `make tools` installs them (apt)"
    tmp = tmp_path_factory.mktemp("prometheus")
    root = copy_project(tmp, ("recipes", "data"))
    with pytest.MonkeyPatch.context() as mp, ExitStack() as stack:
        mp.chdir(root)
        mp.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        mp.setenv("NO_PROXY", "127.0.0.1,localhost")
        for name in ("PUSHGATEWAY_ADDRESS", "GITHUB_ACTIONS", "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
                     "all_proxy", "ALL_PROXY"):
            mp.delenv(name, raising=False)
        features = _register_champion(root)
        done = run_cli("generate", "churn")
        assert done.exit_code == 0, done.stderr[-3000:]
        frame = pd.read_csv(root / "data" / "churn.csv")
        frame.iloc[TRAIN_ROWS:].to_csv(root / "current.csv", index=False)

        # Prometheus first: it takes a few seconds to start scraping, while serve and monitor start.
        gateway = stack.enter_context(Pushgateway(tmp / "pushgateway"))
        port = free_port()
        generated = root / "generated" / "churn" / "dev"
        prometheus = stack.enter_context(
            Prometheus(tmp / "prometheus", scrape_config(generated, port, gateway.port), rule_groups(generated)))
        serve = _start_serve(root, port, tmp / "serve.log")
        stack.callback(_stop, serve)
        monitored = run_cli("monitor", "churn", "--current", "current.csv", "--pushgateway", gateway.url)
        assert monitored.exit_code == 0, monitored.stdout + monitored.stderr[-3000:]
        _wait_listening(serve, tmp / "serve.log")
        send_traffic(port, frame.iloc[TRAIN_ROWS:TRAIN_ROWS + ANSWERED], features)
        yield Stack(generated, gateway, prometheus, monitored.stdout + monitored.stderr)


def wait_for_series(prometheus: Prometheus, queries: dict[str, str]) -> dict[str, str]:
    """{name: query} of the queries still without series at the deadline (scrapes and
    rule evaluations run every second: series come within a few)."""
    return poll(lambda: {name: q for name, q in queries.items() if not prometheus.query(q)})


def poll(check):
    """check() until it returns something empty, or its last answer at SERIES_DEADLINE_S."""
    deadline = time.monotonic() + SERIES_DEADLINE_S
    while (answer := check()) and time.monotonic() < deadline:
        time.sleep(0.5)
    return answer


# --- the tests --------------------------------------------------------------------------
def test_both_targets_are_scraped_with_the_operators_labels(stack):
    labels, _ = operator_target(stack.generated)
    assert labels["job"] == "churn" and labels["namespace"] == "ml-dev" and labels["mlops_dev_track"] == "stable"
    selector = ",".join(f'{k}="{v}"' for k, v in labels.items())
    gateway = ",".join(f'{k}="{v}"' for k, v in pushgateway_target().items())
    assert wait_for_series(stack.prometheus, {"serve": f"up{{{selector}}} == 1", "gateway": f"up{{{gateway}}} == 1"}) == {}


def test_the_traffic_is_counted_as_triton_counts_it(stack):
    """The answered requests in Triton's success counter; the two turned away (a 4xx) in no
    Triton series, as Triton does not count them, but in the app's own by status."""
    labels, _ = operator_target(stack.generated)
    scope = f'namespace="{labels["namespace"]}",service="{labels["service"]}"'
    expected = {
        f"sum(nv_inference_request_success{{{scope}}})": ANSWERED,
        f"sum(nv_inference_request_failure{{{scope}}})": 0,
        f'sum(mlops_requests_total{{{scope},status="200"}})': ANSWERED,
        f'sum(mlops_requests_total{{{scope},status=~"4.."}})': 2,
    }

    def wrong():
        got = {q: [float(s["value"][1]) for s in stack.prometheus.query(q)] for q in expected}
        return {q: v for q, v in got.items() if v != [expected[q]]}

    assert poll(wrong) == {}


def dashboard_queries(generated: Path) -> tuple[dict[str, str], dict[str, str]]:
    """({panel / legend: query}, {...: query left out}): Grafana's variables substituted."""
    dashboard = json.loads((generated / "monitoring" / "grafana-dashboard.json").read_text(encoding="utf-8"))
    asked, left_out = {}, {}
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, value in GRAFANA_WINDOWS.items():
                expr = expr.replace(variable, value)
            assert "$" not in expr, f"a Grafana variable this test does not substitute: {target['expr']}"
            key = f"{panel['title']} / {target.get('legendFormat', '')}"
            (left_out if series_names(expr) <= INFRASTRUCTURE else asked)[key] = expr
    return asked, left_out


def test_every_dashboard_query_returns_series(stack):
    asked, left_out = dashboard_queries(stack.generated)
    assert sorted(left_out) == ["CPU / {{pod}}", "Memory / {{pod}}"]  # cAdvisor's, not ours
    assert len(asked) >= 10
    missing = wait_for_series(stack.prometheus, asked)
    assert missing == {}, "no series for:\n" + "\n".join(f"{k}: {q}" for k, q in missing.items())


def unfired(expr: str) -> str:
    """An alert expression `X > t` as `X > bool t`: every series of X, 0 while healthy."""
    from promql_parser import parse

    node = parse(expr)
    op = str(node.op)
    assert type(node).__name__ == "BinaryExpr" and op in (">", "<", ">=", "<=", "==", "!="), expr
    assert type(node.rhs).__name__ == "NumberLiteral" and node.modifier is None, expr
    left, _, threshold = " ".join(expr.split()).rpartition(f" {op} ")
    assert float(threshold) == node.rhs.val, expr
    asked = f"{left} {op} bool {threshold}"
    assert parse(asked).modifier.return_bool, asked
    return asked


def test_every_alert_expression_reads_live_series_and_every_rule_evaluates(stack):
    rules = [rule for group in rule_groups(stack.generated) for rule in group["rules"]]
    alerts = {rule["alert"]: unfired(rule["expr"]) for rule in rules if "alert" in rule}
    assert {"ModelServingHighErrorRate", "ModelServingHighLatencyP99", "ModelDriftDetected"} <= set(alerts)
    missing = wait_for_series(stack.prometheus, alerts)
    assert missing == {}, "no series for:\n" + "\n".join(f"{k}: {q}" for k, q in missing.items())

    def unhealthy():
        loaded = [r for g in stack.prometheus.api("rules")["groups"] for r in g["rules"]]
        assert len(loaded) == len(rules)
        return [(r["name"], r["health"], r.get("lastError")) for r in loaded if r["health"] != "ok"]

    assert poll(unhealthy) == []


def test_the_pushed_drift_scores_carry_what_the_drift_alert_selects(stack):
    from framework.contracts.metrics import DRIFT_JOB, DRIFT_SCORE, OVERALL_FEATURE

    assert f"pushed model_drift_score to {stack.gateway.url}" in stack.monitor_output
    status, body = get(f"{stack.gateway.url}/metrics")
    assert status == 200
    samples = [s for f in text_string_to_metric_families(body.decode()) if f.name == DRIFT_SCORE.name for s in f.samples]
    (drift,) = [r for g in rule_groups(stack.generated) for r in g["rules"] if r.get("alert") == "ModelDriftDetected"]
    selected = dict(re.findall(r'(\w+)="([^"]*)"', re.search(rf"{DRIFT_SCORE.name}\{{([^}}]*)\}}", drift["expr"]).group(1)))
    assert selected == {"namespace": "ml-dev", "model": "churn"}
    features = {s.labels["feature"] for s in samples}
    assert OVERALL_FEATURE in features and "tenure_months" in features
    for sample in samples:
        assert selected.items() <= sample.labels.items(), sample
        assert sample.labels["job"] == DRIFT_JOB and sample.labels["instance"] == ""


def test_a_pushgateway_that_does_not_answer_is_one_error_line(stack):
    address = f"http://127.0.0.1:{free_port()}"
    result = run_cli("monitor", "churn", "--current", "current.csv", "--pushgateway", address)
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"--pushgateway: cannot push model_drift_score to {address}: Connection refused")


def test_a_pushgateway_address_that_is_no_url_is_refused_before_the_check(stack):
    result = run_cli("monitor", "churn", "--current", "current.csv", "--pushgateway", "pushgateway :9091")
    assert (result.exit_code, result.stderr.strip()) == (
        1, "--pushgateway: cannot push model_drift_score to pushgateway :9091: not an http(s) URL")
