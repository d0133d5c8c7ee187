"""Monitoring target: ServiceMonitor, PrometheusRule and the Grafana dashboard, and the
PromQL of metrics.py (parsed by promql-parser, the Rust parser of GreptimeDB)."""

from __future__ import annotations

import json
import re
from functools import lru_cache

import jsonschema
import pytest

from framework import api
from framework.targets import kubernetes, metrics, metrics_sglang, monitoring, traffic
from tests.conftest import REPO
from tests.promql import series_names
from tests.targets.conftest import CRD_SCHEMAS, load_variant
from tests.targets.k8s_checks import documents, of_kind, one


# --- PromQL helpers (shared with test_traffic; series_names in tests/promql.py) --------
def check_promql(exprs: list[str]) -> None:
    assert exprs
    for expr in exprs:
        unknown = series_names(expr) - metrics.SERIES_NAMES
        assert not unknown, f"{expr} reads metrics metrics.py does not define: {unknown}"


@lru_cache(maxsize=None)
def _crd_validator(api_version: str, kind: str):
    """The CRD's JSON Schema; Go (RE2) inline flags moved to the front, where Python's re
    accepts them (prometheusrule_v1.json has `^(?i)(abort|warn)?$`, see vendor/SOURCES.md)."""
    group, version = api_version.split("/")
    text = (CRD_SCHEMAS / group / f"{kind.lower()}_{version}.json").read_text()
    schema = json.loads(text.replace('"^(?i)', '"(?i)^'))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def validate_crd(doc: dict) -> list[str]:
    validator = _crd_validator(doc["apiVersion"], doc["kind"])
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]


def recipe_with(*overrides: str, name: str = "churn", env: str = "dev"):
    return api.load_recipe(name, env=env, overrides=list(overrides), project=REPO).recipe


def docs_of(recipe):
    return documents([a for a in monitoring.render(recipe) if a.path.endswith(".yaml")])


def dashboard_of(recipe) -> dict:
    (artifact,) = [a for a in monitoring.render(recipe) if a.path == "monitoring/grafana-dashboard.json"]
    return json.loads(artifact.text)


# --- metrics.py ------------------------------------------------------------------------
def test_metric_names_follow_the_contract():
    from framework.contracts import metrics as contract

    assert metrics.APP_METRICS is contract.APP_METRICS and metrics.DRIFT_SCORE is contract.DRIFT_SCORE  # the queries read these
    assert metrics.REQUESTS.name == "mlops_requests_total" and metrics.REQUESTS.labels == ("model", "version", "status")
    assert metrics.REQUEST_DURATION.buckets == (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
    assert metrics.REQUEST_DURATION.labels == ("model", "version")
    assert {m.name: m.kind for m in metrics.APP_METRICS} == {
        "mlops_requests_total": "counter",
        "mlops_request_duration_seconds": "histogram",
        "mlops_batch_size": "histogram",
        "mlops_inflight_requests": "gauge",
        "mlops_rollout_weight": "gauge",
    }
    assert metrics.DRIFT_SCORE.name == "model_drift_score" and metrics.DRIFT_SCORE.labels == ("model", "feature")
    assert metrics.OVERALL_FEATURE == "__overall__"
    assert metrics.TRACK == "mlops_dev_track"
    for spec in metrics.APP_METRICS + (metrics.DRIFT_SCORE,):
        assert re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", spec.name)


def test_durations_are_go_and_prometheus_compatible():
    assert metrics.duration("5m") == "5m"
    assert metrics.duration("90s") == "1m30s"
    assert metrics.duration("1d") == "24h"
    assert metrics.duration("1h30m") == "1h30m"
    assert metrics.duration(0.5) == "500ms"
    assert metrics.seconds("1h30m") == 5400


def test_rate_window_covers_four_scrapes():
    assert metrics.rate_window(recipe_with()) == "5m"
    assert metrics.rate_window(recipe_with("monitoring.metrics.scrape_interval=2m")) == "8m"


def test_scope_matches_common_names(recipe):
    from framework.targets import common

    names = common.names(recipe)
    sel = metrics.scope(recipe).selector("x")
    assert f'namespace="{recipe.deploy.namespace}"' in sel
    if recipe.serving.backend == "ray_serve":
        assert f'model="{recipe.registered_model}"' in sel
    elif recipe.serving.backend == "ray_serve_llm":
        assert f'application="{recipe.name}"' in sel
    else:
        assert f'service="{names.service}"' in sel
    assert metrics._server_name(recipe) == names.server


def test_every_query_parses_and_reads_only_known_metrics(recipe):
    queries = [
        metrics.request_rate(recipe, "5m"),
        metrics.request_count(recipe, "5m"),
        metrics.error_ratio(recipe, "5m"),
        metrics.traffic_by_version(recipe, "5m"),
        metrics.drift_score(recipe),
        metrics.drift_scores(recipe),
        metrics.cpu_usage(recipe, "5m"),
        metrics.memory_working_set(recipe),
        metrics.gpu_utilization(recipe),
        metrics.with_min_requests(metrics.error_ratio(recipe, "5m"), recipe, "5m", 100),
        *[metrics.latency_quantile(recipe, q, "$__rate_interval") for q in metrics.QUANTILES],
    ]
    if recipe.serving.backend == "vllm":
        queries.append(metrics.finished_requests(recipe, "5m"))
    if recipe.serving.backend == "tgi":
        queries.append(metrics.queue_size(recipe))
    if recipe.serving.backend == "sglang":
        queries += sglang_queries(recipe, "5m")
    if recipe.serving.backend == "ray_serve":
        queries.append(metrics.rollout_weight(recipe))
    if recipe.rag is not None:
        queries += [metrics.rag_request_rate(recipe, "5m"), metrics.rag_error_ratio(recipe, "5m"),
                    *[metrics.rag_latency_quantile(recipe, q, "5m") for q in metrics.QUANTILES]]
    check_promql(queries)


def sglang_queries(recipe, window: str) -> list[str]:
    """The SGLang engine's queries (metrics_sglang.py) the dashboard shows."""
    s = metrics.scope(recipe)
    return [*[metrics_sglang.time_to_first_token(s, q, window) for q in metrics.QUANTILES], metrics_sglang.running(s),
            metrics_sglang.queued(s), metrics_sglang.throughput(s), metrics_sglang.token_usage(s)]


def test_queries_read_the_backends_metrics():
    triton, vllm, ray = recipe_with(), recipe_with(name="support_assistant"), recipe_with("serving=ray_serve")
    assert series_names(metrics.error_ratio(triton, "5m")) == {metrics.TRITON_SUCCESS, metrics.TRITON_FAILURE}
    assert series_names(metrics.latency_quantile(triton, 0.99, "5m")) == {metrics.TRITON_LATENCY_SUMMARY}
    assert 'quantile="0.99"' in metrics.latency_quantile(triton, 0.99, "5m")
    assert series_names(metrics.error_ratio(vllm, "5m")) == {"http_requests_total"}
    assert 'status="5xx"' in metrics.error_ratio(vllm, "5m")
    assert series_names(metrics.latency_quantile(vllm, 0.95, "5m")) == {"vllm:e2e_request_latency_seconds_bucket"}
    assert series_names(metrics.error_ratio(ray, "5m")) == {"ray_mlops_requests_total"}
    assert series_names(metrics.latency_quantile(ray, 0.5, "5m")) == {"ray_mlops_request_duration_seconds_bucket"}
    tgi = recipe_with("serving=tgi", name="support_assistant")
    assert series_names(metrics.request_rate(tgi, "5m")) == {"tgi_request_count"}
    assert series_names(metrics.error_ratio(tgi, "5m")) == {"tgi_request_failure", "tgi_request_count"}
    assert 'err!~"validation"' in metrics.error_ratio(tgi, "5m")  # the client's errors are not the server's
    assert series_names(metrics.latency_quantile(tgi, 0.99, "5m")) == {"tgi_request_duration_bucket"}
    assert metrics.version_labels(tgi) == (metrics.TRACK,)
    sglang = recipe_with("serving=sglang", name="support_assistant")
    assert series_names(metrics.request_rate(sglang, "5m")) == {"sglang:http_responses_total"}
    assert series_names(metrics.error_ratio(sglang, "5m")) == {"sglang:http_responses_total"}
    assert 'status_code=~"5.."' in metrics.error_ratio(sglang, "5m") and 'endpoint=~"/v1/.+"' in metrics.request_rate(sglang, "5m")
    assert series_names(metrics.latency_quantile(sglang, 0.99, "5m")) == {"sglang:e2e_request_latency_seconds_bucket"}
    assert metrics.version_labels(sglang) == (metrics.TRACK,)
    ray_llm = recipe_with("serving=ray_serve_llm", "rollout=direct", name="support_assistant")
    assert series_names(metrics.error_ratio(ray_llm, "5m")) == {"ray_serve_num_http_requests_total"}
    assert 'status_code=~"5.."' in metrics.error_ratio(ray_llm, "5m") and 'route!~"/-/.*"' in metrics.request_rate(ray_llm, "5m")
    p99 = metrics.latency_quantile(ray_llm, 0.99, "5m")
    assert series_names(p99) == {"ray_serve_http_request_latency_ms_bucket"} and p99.endswith(" / 1000")  # ms -> s
    # The RAG service: the serving app's series through Ray, version "rag", whatever the LLM backend.
    for llm in (vllm, sglang, tgi, ray_llm):
        assert series_names(metrics.rag_error_ratio(llm, "5m")) == {"ray_mlops_requests_total"}
        assert series_names(metrics.rag_latency_quantile(llm, 0.5, "5m")) == {"ray_mlops_request_duration_seconds_bucket"}
        for query in (metrics.rag_request_rate(llm, "5m"), metrics.rag_error_ratio(llm, "5m")):
            assert f'version="{metrics.RAG_VERSION}"' in query and f'model="{llm.registered_model}"' in query
    assert 'status=~"5.."' in metrics.rag_error_ratio(vllm, "5m")
    with pytest.raises(ValueError, match="quantile"):
        metrics.rag_latency_quantile(vllm, 0.42, "5m")
    with pytest.raises(ValueError, match="quantile"):
        metrics.latency_quantile(triton, 0.42, "5m")
    with pytest.raises(ValueError, match="not a Prometheus range"):
        metrics.request_rate(triton, "5 minutes")


# --- ServiceMonitor --------------------------------------------------------------------
def test_objects_match_their_crd_schemas(recipe):
    docs = docs_of(recipe)
    if not recipe.monitoring.metrics.enabled:
        assert docs == []
        return
    kinds = sorted(doc["kind"] for _, doc in docs)
    expected = ["PrometheusRule"] if metrics.on_ray(recipe) else ["PrometheusRule", "ServiceMonitor"]
    assert kinds == expected
    for _, doc in docs:
        assert validate_crd(doc) == []


def test_servicemonitor_selects_the_services_metrics_port(recipe):
    if metrics.on_ray(recipe):
        return
    monitor = one(docs_of(recipe), "ServiceMonitor")
    services = of_kind(documents(kubernetes.render(recipe)), "Service")
    services += of_kind(documents(traffic.render(recipe)), "Service")  # blue/green's preview
    assert services
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert monitor["spec"]["namespaceSelector"]["matchNames"] == [recipe.deploy.namespace]
    (endpoint,) = monitor["spec"]["endpoints"]
    for service in services:  # every serving Service is scraped, on a port it has
        assert selector.items() <= service["metadata"]["labels"].items(), service["metadata"]["name"]
        assert service["metadata"]["namespace"] == recipe.deploy.namespace
        assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["port"] == ("metrics" if recipe.serving.backend == "triton" else "http")
    assert endpoint["path"] == recipe.monitoring.metrics.path
    assert endpoint["interval"] == metrics.duration(recipe.monitoring.metrics.scrape_interval)
    assert metrics.seconds(endpoint["scrapeTimeout"]) <= metrics.seconds(endpoint["interval"])
    assert monitor["spec"]["podTargetLabels"] == [metrics.TRACK_LABEL]


def test_servicemonitor_interval_is_normalized():
    monitor = one(docs_of(recipe_with("monitoring.metrics.scrape_interval=90s")), "ServiceMonitor")
    assert monitor["spec"]["endpoints"][0]["interval"] == "1m30s"
    assert validate_crd(monitor) == []


# --- PrometheusRule --------------------------------------------------------------------
def rules_of(recipe) -> dict[str, dict]:
    rule = one(docs_of(recipe), "PrometheusRule")
    return {r["alert"]: r for g in rule["spec"]["groups"] for r in g["rules"]}


def test_alerts_use_the_recipes_thresholds_and_metrics_queries(recipe):
    if not recipe.monitoring.metrics.enabled:
        return
    alerts, drift = recipe.monitoring.alerts, recipe.monitoring.drift
    window = metrics.rate_window(recipe)
    rules = rules_of(recipe)
    assert set(rules) == {"ModelServingHighErrorRate", "ModelServingHighLatencyP99"} | (
        {"ModelDriftDetected"} if drift else set()
    ) | ({"RagServiceHighErrorRate"} if recipe.rag is not None else set())
    errors, latency = rules["ModelServingHighErrorRate"], rules["ModelServingHighLatencyP99"]
    assert errors["expr"] == metrics.above(metrics.error_ratio(recipe, window), alerts.max_error_rate)
    assert latency["expr"] == metrics.above(
        metrics.latency_quantile(recipe, 0.99, window), alerts.max_latency_p99_ms / 1000
    )
    assert errors["for"] == latency["for"] == metrics.duration(alerts.duration)
    for rule in rules.values():
        assert rule["labels"]["severity"] == alerts.severity
        assert rule["labels"]["recipe"] == recipe.name
        assert {"summary", "description", "runbook"} <= set(rule["annotations"])
    if drift:
        assert rules["ModelDriftDetected"]["expr"] == metrics.above(metrics.drift_scores(recipe), drift.threshold)
        assert rules["ModelDriftDetected"]["labels"]["on_drift"] == drift.on_drift
    if recipe.rag is not None:
        rag = rules["RagServiceHighErrorRate"]
        assert rag["expr"] == metrics.above(metrics.rag_error_ratio(recipe, window), alerts.max_error_rate)
        assert rag["for"] == metrics.duration(alerts.duration)
    check_promql([r["expr"] for r in rules.values()])


def test_the_rag_version_label_is_the_services():
    """The queries select the version label the RAG service really records."""
    from framework.runtime.rag import service

    assert metrics.RAG_VERSION == service.VERSION


def test_prod_alerts_are_critical():
    rules = rules_of(recipe_with(env="prod"))
    assert {r["labels"]["severity"] for r in rules.values()} == {"critical"}


# --- dashboard -------------------------------------------------------------------------
def dashboard_queries(recipe) -> set[str]:
    """Every query metrics.py offers the dashboard of this recipe."""
    w = monitoring.DASHBOARD_WINDOW
    result = {
        metrics.request_rate(recipe, w),
        metrics.error_ratio(recipe, w),
        metrics.traffic_by_version(recipe, w),
        metrics.drift_score(recipe),
        metrics.drift_scores(recipe),
        metrics.cpu_usage(recipe, w),
        metrics.memory_working_set(recipe),
        metrics.gpu_utilization(recipe),
        metrics.rollout_weight(recipe),
        *[metrics.latency_quantile(recipe, q, w) for q in metrics.QUANTILES],
    }
    if recipe.serving.backend == "vllm":
        result.add(metrics.finished_requests(recipe, w))
    if recipe.serving.backend == "tgi":
        result.add(metrics.queue_size(recipe))
    if recipe.serving.backend == "sglang":
        result |= set(sglang_queries(recipe, w))
    if recipe.rag is not None:
        result |= {metrics.rag_request_rate(recipe, w), metrics.rag_error_ratio(recipe, w),
                   *[metrics.rag_latency_quantile(recipe, q, w) for q in metrics.QUANTILES]}
    return result


def test_dashboard(recipe):
    m = recipe.monitoring
    paths = [a.path for a in monitoring.render(recipe)]
    if not (m.metrics.enabled and m.dashboard.enabled):
        assert "monitoring/grafana-dashboard.json" not in paths
        return
    board = dashboard_of(recipe)
    assert board["schemaVersion"] == monitoring.GRAFANA_SCHEMA_VERSION
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", board["uid"])
    assert board["uid"] == monitoring.dashboard_uid(recipe)
    assert "Do not edit" in board["description"] and recipe.name in board["description"]
    assert board["refresh"] == metrics.duration(m.dashboard.refresh)
    assert board["time"] == {"from": "now-6h", "to": "now"}
    (variable,) = board["templating"]["list"]
    assert (variable["type"], variable["query"], variable["name"]) == ("datasource", "prometheus", "datasource")
    panels = board["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    exprs = []
    for panel in panels:
        assert panel["type"] in ("timeseries", "stat")
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs))
        exprs += [t["expr"] for t in panel["targets"]]
    assert set(exprs) <= dashboard_queries(recipe)  # every query comes from metrics.py
    check_promql(exprs)
    titles = {p["title"] for p in panels}
    assert {"Requests per second", "Latency", "Error rate", "Traffic per model version", "CPU", "Memory"} <= titles
    assert ("GPU utilisation" in titles) == (recipe.serving.resources.gpu > 0)
    assert ("Drift score per feature" in titles) == (m.drift is not None)
    rag_titles = {"RAG queries per second", "RAG error rate", "RAG latency"}
    assert (rag_titles <= titles) == (recipe.rag is not None) and (rag_titles & titles == set()) == (recipe.rag is None)
    latency = next(p for p in panels if p["title"] == "Latency")
    assert [t["legendFormat"] for t in latency["targets"]] == ["p50", "p95", "p99"]
    assert latency["fieldConfig"]["defaults"]["unit"] == "s"
    # panels do not overlap
    cells = set()
    for panel in panels:
        g = panel["gridPos"]
        area = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & area and g["x"] + g["w"] <= 24
        cells |= area


def test_dashboard_uid_is_short_and_unique():
    assert monitoring.dashboard_uid(recipe_with()) == "mlops-churn_dev"
    long_env = recipe_with().model_copy(update={"environment": "a-very-long-environment-name-for-testing"})
    uid = monitoring.dashboard_uid(long_env)
    assert len(uid) <= 40 and uid == monitoring.dashboard_uid(long_env.model_copy())
    assert uid != monitoring.dashboard_uid(long_env.model_copy(update={"environment": long_env.environment + "x"}))


# --- switches and determinism ----------------------------------------------------------
def test_nothing_when_metrics_are_disabled():
    assert monitoring.render(recipe_with("monitoring.metrics.enabled=false", "rollout=direct")) == []


def test_no_dashboard_when_disabled():
    paths = [a.path for a in monitoring.render(load_variant("churn-no-drift"))]
    assert paths == ["k8s/prometheusrule.yaml", "k8s/servicemonitor.yaml"]


def test_rendering_twice_is_byte_identical(recipe):
    first, second = monitoring.render(recipe), monitoring.render(recipe)
    assert [(a.path, a.text) for a in first] == [(a.path, a.text) for a in second]
    for artifact in first:
        if artifact.path.endswith(".yaml"):
            assert artifact.text.startswith("# Generated by mlops")
