"""`mlops monitor churn` after a real `mlops apply churn`: the champion's recorded
reference against a file or the served traffic; exit 0 / 3 / 1; report, gauges, MLflow;
the retrain path runs the training entrypoint and the rollout."""

from __future__ import annotations

import contextlib
import importlib.util
import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import REPO, copy_project, run_cli
from tests.promql import series_names

pytestmark = pytest.mark.slow

FEATURES = ["tenure_months", "monthly_charges", "total_charges", "support_calls", "num_products", "senior_citizen",
            "contract", "payment_method"]


def make_churn():
    spec = importlib.util.spec_from_file_location("make_churn", REPO / "data" / "make_churn.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def applied_project(base: Path):
    """A project where `mlops apply churn` ran once (version 1 is the champion), plus a
    normal and a drifted current file (data/make_churn.py, as the README documents); the
    working directory while open."""
    root = copy_project(base, ("recipes", "data"))
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        for name, value in {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0", "MLFLOW_DISABLE_TELEMETRY": "true"}.items():
            mp.setenv(name, value)
        for name in ("GITHUB_ACTIONS", "PUSHGATEWAY_ADDRESS", "http_proxy", "HTTP_PROXY"):
            mp.delenv(name, raising=False)
        result = run_cli("apply", "churn")
        assert result.exit_code == 0, result.stderr[-3000:]
        churn = make_churn()
        churn.write(root / "normal.csv", churn.generate(2000, seed=7))
        churn.write(root / "drifted.csv", churn.generate(2000, seed=7, drift=True))
        yield root


@pytest.fixture(scope="module")
def applied(tmp_path_factory):
    """The project the read-only tests share: none of them changes its champion."""
    with applied_project(tmp_path_factory.mktemp("monitor")) as root:
        yield root


def report_of(result) -> Path:
    """The folder of the report this `mlops monitor` run wrote (its `report:` line)."""
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("  report: ")]
    return Path(line.removeprefix("  report: ")).parent


def monitor_normal(applied: Path):
    result = run_cli("monitor", "churn", "--current", "normal.csv")
    assert result.exit_code == 0, result.stdout + result.stderr[-3000:]
    return result


def prom_samples(path: Path) -> dict[str, float]:
    found = {}
    for family in text_string_to_metric_families(path.read_text()):
        for sample in family.samples:
            assert sample.labels["model"] == "churn"
            found[sample.labels["feature"]] = sample.value
        assert family.name == "model_drift_score"
    return found


def test_same_distribution_is_no_drift_exit_0(applied):
    result = monitor_normal(applied)
    first = result.stdout.splitlines()[0]
    assert first.startswith("churn (dev): no drift: psi overall ")
    assert first.endswith("0 of 9 columns drifted")  # 8 features + the churn probability
    report = report_of(result)
    summary = json.loads((report / "drift.json").read_text())
    assert summary["drifted"] is False and summary["reference"]["version"] == "1"
    assert summary["current"]["rows"] == 2000 and summary["current"]["notes"][-1] == "predictions of version 1 on these rows"
    assert [c["column"] for c in summary["columns"]] == [*FEATURES[:6], *FEATURES[6:], "probabilities_1"]
    assert "<html" in (report / "drift.html").read_text()[:5000].lower()
    scores = prom_samples(report / "drift.prom")
    assert set(scores) == {*FEATURES, "probabilities_1", "__overall__"}
    assert scores["__overall__"] == pytest.approx(summary["overall"]) and max(scores.values()) < 0.1


def test_drifted_file_exit_3_names_the_columns(applied):
    result = run_cli("monitor", "churn", "--current", str(applied / "drifted.csv"))
    assert result.exit_code == 3, result.stdout + result.stderr[-3000:]
    first = result.stdout.splitlines()[0]
    assert first.startswith("churn (dev): DRIFT: psi overall ")
    for column in ("monthly_charges", "support_calls", "contract", "probabilities_1"):
        assert column in first.split(": ")[-1]
    assert "on_drift alert: alert" in result.stdout
    assert "DRIFT" in result.stderr  # the terminal table


def test_the_monitor_run_is_in_mlflow(applied):
    import mlflow

    (line,) = [line for line in monitor_normal(applied).stdout.splitlines() if line.startswith("  MLflow run ")]
    run_id = line.removeprefix("  MLflow run ")
    client = mlflow.MlflowClient(f"sqlite:///{applied / '.mlops' / 'mlflow.db'}")
    tags = client.get_run(run_id).data.tags
    assert (tags["mlops.kind"], tags["mlops.drift"]) == ("monitor", "none")
    artifacts = {a.path for a in client.list_artifacts(run_id, "drift")}
    assert {"drift/drift.json", "drift/drift.prom"} <= artifacts


def _bad(applied: Path, name: str, frame: pd.DataFrame) -> Path:
    path = applied / name
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    "case, change, message",
    [
        ("missing", lambda f: f.drop(columns=["tenure_months", "contract"]),
         "missing column(s) tenure_months, contract the model was trained on"),
        ("extra", lambda f: f.assign(region="north"),
         "column(s) region the training data did not have; drop them or compare a file laid out like the training data"),
        ("text-in-numeric", lambda f: f.assign(monthly_charges=["abc"] + list(f.monthly_charges[1:])),
         "column 'monthly_charges' was numeric in training but holds text here (1 rows, e.g. 'abc')"),
        ("numbers-in-categorical", lambda f: f.assign(contract=1),
         "column 'contract' was categorical in training (month_to_month, one_year, two_year) but holds numbers here (e.g. 1)"),
    ],
)
def test_files_that_cannot_be_compared_exit_1(applied, case, change, message):
    path = _bad(applied, f"bad-{case}.csv", change(pd.read_csv(applied / "normal.csv")))
    result = run_cli("monitor", "churn", "--current", str(path))
    assert result.exit_code == 1
    assert result.stderr.strip() == f"{path}: --current: {message}"
    assert isinstance(result.exception, SystemExit)  # refused with a message, not a crash


def test_too_few_rows_and_no_file_exit_1(applied):
    path = _bad(applied, "few.csv", pd.read_csv(applied / "normal.csv").head(100))
    result = run_cli("monitor", "churn", "--current", str(path))
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"monitoring.drift.min_rows: only 100 current rows ({path}); a decision needs at least 500: "
        "wait for more traffic, widen --window, or lower monitoring.drift.min_rows"
    )
    result = run_cli("monitor", "churn", "--current", "nope.csv")
    assert (result.exit_code, result.stderr.strip()) == (1, f"{applied / 'nope.csv'}: --current: no such file: {applied / 'nope.csv'}")


def _serve_rows(applied: Path, rows: pd.DataFrame) -> str:
    """Serve the champion (every request logged) and send `rows` as traffic; returns /metrics."""
    import urllib.request

    from framework import api
    from framework.runtime.training.reference import load
    from framework.runtime.rollout.traffic import send_infer_requests
    from framework.runtime.serving.host import EmbeddedServer, build_app

    recipe = api.load_recipe("churn", project=applied).recipe
    x = load(recipe, applied / ".mlops").pipeline().raw_inputs(rows)
    app = build_app(recipe, None, applied / ".mlops", log_sample_rate=1.0)
    with EmbeddedServer(app) as server:
        report = send_infer_requests(server.url, "churn", x, len(rows), concurrency=4, rows_per_request=1, seed=1)
        assert report.ok == len(rows)
        metrics = urllib.request.urlopen(f"http://{server.url}/metrics", timeout=10).read().decode()
    return metrics


def test_served_traffic_from_the_request_log(applied):
    import shutil

    shutil.rmtree(applied / ".mlops" / "requests", ignore_errors=True)
    _serve_rows(applied, pd.read_csv(applied / "normal.csv").head(800))
    result = run_cli("monitor", "churn")
    assert result.exit_code == 0, result.stdout + result.stderr[-3000:]
    assert result.stdout.splitlines()[1].endswith(" on 800 current rows")
    current = json.loads((report_of(result) / "drift.json").read_text())["current"]
    assert current["source"].startswith(f"request log {applied / '.mlops' / 'requests' / 'churn'}") and current["rows"] == 800

    shutil.rmtree(applied / ".mlops" / "requests")
    _serve_rows(applied, pd.read_csv(applied / "drifted.csv").head(800))
    result = run_cli("monitor", "churn", "--window", "1h")
    assert result.exit_code == 3, result.stdout + result.stderr[-3000:]
    assert "contract" in result.stdout.splitlines()[0]


def test_dashboard_and_alerts_read_names_that_serving_and_monitor_expose(applied):
    """Every metric the generated PrometheusRule and Grafana dashboard query exists in a
    real scrape of the serving app or in the monitor's gauges."""
    from framework.contracts.metrics import RAY_PREFIX

    exposed = set()
    for family in text_string_to_metric_families(_serve_rows(applied, pd.read_csv(applied / "normal.csv").head(50))):
        exposed |= {s.name for s in family.samples}
    report = report_of(monitor_normal(applied))
    exposed |= {s.name for f in text_string_to_metric_families((report / "drift.prom").read_text()) for s in f.samples}

    generated = REPO / "generated" / "churn" / "dev"
    rule = yaml.safe_load((generated / "k8s" / "prometheusrule.yaml").read_text())
    queried = {n for group in rule["spec"]["groups"] for r in group["rules"] for n in series_names(r["expr"])}
    dashboard = json.loads((generated / "monitoring" / "grafana-dashboard.json").read_text())
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"].replace("$__rate_interval", "5m").replace("$__range", "1h").replace("$__interval", "1m")
            queried |= series_names(expr)
    ours = {n for n in queried if n.startswith(("mlops_", "model_drift", RAY_PREFIX + "mlops_"))}
    assert ours and "model_drift_score" in ours
    assert ours - exposed == set()


@pytest.fixture
def applied_alone(tmp_path):
    """A project of its own: retraining rolls a second version out, which would change the
    champion every other test here compares against."""
    with applied_project(tmp_path) as root:
        yield root


def test_retrain_appends_the_labelled_rows_and_runs_the_training(applied_alone):
    from framework import api
    from framework.runtime.monitor.run import monitor
    from framework.runtime.tracking import alias_version

    applied = applied_alone
    recipe = api.load_recipe("churn", overrides=["monitoring.drift.on_drift=retrain"], project=applied).recipe
    out = monitor(recipe, applied / ".mlops", applied, current=applied / "drifted.csv", log_to_mlflow=False)
    assert out.exit_code == 3 and out.action == "retrained", out.action_detail
    assert out.action_detail[0] == "training data: 5000 rows of data/churn.csv + 2000 labelled current rows"
    assert out.action_detail[1].startswith("trained version 2 (MLflow run ")
    uri = f"sqlite:///{applied / '.mlops' / 'mlflow.db'}"
    assert alias_version("churn", "candidate", uri=uri) == "2"
    (retrained,) = (applied / ".mlops" / "retrain" / "churn" / "dev").iterdir()
    assert len(pd.read_parquet(retrained / "data.parquet")) == 7000
    assert yaml.safe_load((retrained / "recipe.resolved.yaml").read_text())["data"]["source"]["uri"] == str(retrained / "data.parquet")
    assert not (applied / "generated" / "churn" / "dev" / "recipe.resolved.yaml").read_text().count("retrain")


def test_retrain_in_github_actions_dispatches_the_workflow(applied, monkeypatch):
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from framework import api
    from framework.runtime.monitor.actions import retrain

    seen = []

    class GitHub(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            seen.append((self.path, self.headers["Authorization"], json.loads(body)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), GitHub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    for name, value in {"GITHUB_ACTIONS": "true", "GITHUB_TOKEN": "t0ken", "GITHUB_REPOSITORY": "acme/ml",
                        "GITHUB_REF_NAME": "main", "GITHUB_API_URL": f"http://127.0.0.1:{server.server_port}"}.items():
        monkeypatch.setenv(name, value)
    recipe = api.load_recipe("churn", project=applied).recipe
    try:
        action, detail = retrain(recipe, applied / ".mlops", applied, None)
    finally:
        server.shutdown()
    assert action == "dispatched"
    assert seen == [("/repos/acme/ml/actions/workflows/mlops-churn.yml/dispatches", "Bearer t0ken", {"ref": "main"})]
    assert detail == ["dispatched workflow mlops-churn.yml on main in acme/ml (HTTP 204)"]
    assert (REPO / ".github" / "workflows" / "mlops-churn.yml").read_text().count("workflow_dispatch") == 1
