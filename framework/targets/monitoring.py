"""Monitoring target: Prometheus operator objects and the Grafana dashboard.

When `monitoring.metrics.enabled`:
* `k8s/servicemonitor.yaml`: scrapes the serving Service(s) (`<recipe>`, and
  blue/green's `<recipe>-preview`, which carries the same labels) on the port that
  serves metrics: `metrics` for Triton, `http` for vLLM, SGLang and TGI. It copies the pods'
  `mlops.dev/track` label onto the series (`mlops_dev_track`). Ray Serve and Ray Serve
  LLM get none: KubeRay owns those pods and Ray's metrics port is scraped per pod (see
  README).
* `k8s/prometheusrule.yaml`: alerts on error rate, p99 latency and, with
  `monitoring.drift`, drift scores; with `rag`, on the RAG service's error rate.
* `monitoring/grafana-dashboard.json` when `monitoring.dashboard.enabled` too.

Every PromQL string comes from `metrics.py`.
"""

from __future__ import annotations

import hashlib
from typing import Any

from framework.targets import Artifact, common, metrics
from framework.targets import metrics_sglang as sglang

COMPONENT = "server"
MONITORING_API = "monitoring.coreos.com/v1"
MAX_SCRAPE_TIMEOUT_SECONDS = 10
GRAFANA_SCHEMA_VERSION = 39
GRAFANA_UID_MAX = 40
DASHBOARD_WINDOW = "$__rate_interval"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


# --- ServiceMonitor ----------------------------------------------------------------------
def metrics_port(recipe) -> str:
    """The Service port name that serves /metrics."""
    return "metrics" if recipe.serving.backend == "triton" else "http"


def service_monitor(recipe) -> dict[str, Any]:
    interval = metrics.seconds(recipe.monitoring.metrics.scrape_interval)
    return {
        "apiVersion": MONITORING_API,
        "kind": "ServiceMonitor",
        "metadata": common.metadata(recipe, common.names(recipe).server, COMPONENT),
        "spec": {
            "selector": {"matchLabels": common.selector_labels(recipe, COMPONENT)},
            "namespaceSelector": {"matchNames": [recipe.deploy.namespace]},
            "podTargetLabels": [metrics.TRACK_LABEL],
            "endpoints": [
                {
                    "port": metrics_port(recipe),
                    "path": recipe.monitoring.metrics.path,
                    "scheme": "http",
                    "interval": metrics.duration(interval),
                    "scrapeTimeout": metrics.duration(min(interval, MAX_SCRAPE_TIMEOUT_SECONDS)),
                }
            ],
        },
    }


# --- PrometheusRule ----------------------------------------------------------------------
def _percent(ratio: float) -> str:
    return f"{ratio * 100:g}%"


def alert_rules(recipe) -> list[dict[str, Any]]:
    """The serving alerts (error rate, p99 latency)."""
    alerts = recipe.monitoring.alerts
    window = metrics.rate_window(recipe)
    where = f"{recipe.name} ({recipe.environment}, namespace {recipe.deploy.namespace})"
    p99_seconds = alerts.max_latency_p99_ms / 1000
    runbook = (
        f"Check `mlops rollout status {recipe.name} --env {recipe.environment}`; if a candidate is rolling out, "
        f"`mlops rollout rollback {recipe.name}`; else look at the serving pods' logs and the dashboard."
    )
    return [
        {
            "alert": "ModelServingHighErrorRate",
            "expr": metrics.above(metrics.error_ratio(recipe, window), alerts.max_error_rate),
            "for": metrics.duration(alerts.duration),
            "labels": _labels(recipe),
            "annotations": {
                "summary": f"{where}: more than {_percent(alerts.max_error_rate)} of requests fail",
                "description": "{{ $value | humanizePercentage }} of requests failed over the last "
                + f"{window} (threshold {_percent(alerts.max_error_rate)}).",
                "runbook": runbook,
            },
        },
        {
            "alert": "ModelServingHighLatencyP99",
            "expr": metrics.above(metrics.latency_quantile(recipe, 0.99, window), p99_seconds),
            "for": metrics.duration(alerts.duration),
            "labels": _labels(recipe),
            "annotations": {
                "summary": f"{where}: p99 latency above {alerts.max_latency_p99_ms:g} ms",
                "description": "p99 latency is {{ $value | humanizeDuration }} over the last "
                + f"{window} (threshold {alerts.max_latency_p99_ms:g} ms).",
                "runbook": runbook,
            },
        },
    ]


def drift_rules(recipe) -> list[dict[str, Any]]:
    drift = recipe.monitoring.drift
    if drift is None:
        return []
    return [
        {
            "alert": "ModelDriftDetected",
            # The score is already computed over monitoring.drift.window: no `for`.
            "expr": metrics.above(metrics.drift_scores(recipe), drift.threshold),
            "labels": {**_labels(recipe), "on_drift": drift.on_drift},
            "annotations": {
                "summary": f"{recipe.name} ({recipe.environment}): feature {{{{ $labels.feature }}}} drifted",
                "description": f"{drift.method} drift score {{{{ $value }}}} of feature {{{{ $labels.feature }}}} "
                f"over the last {drift.window} of served traffic exceeds {drift.threshold:g}.",
                "runbook": (
                    f"Run `mlops monitor {recipe.name}` to see the drifted features; if the change is real, retrain "
                    f"(`mlops apply {recipe.name} --env {recipe.environment}`)"
                    + (" (on_drift: retrain starts it)." if drift.on_drift == "retrain" else ".")
                ),
            },
        }
    ]


def rag_rules(recipe) -> list[dict[str, Any]]:
    """The RAG service's alert (recipes with `rag`): its error rate. Its latency is mostly
    generation, which the serving alerts already watch (and the serving app's buckets end
    at 1 s, see metrics.py)."""
    if getattr(recipe, "rag", None) is None:
        return []
    alerts = recipe.monitoring.alerts
    window = metrics.rate_window(recipe)
    ns = recipe.deploy.namespace
    service = common.names(recipe).rag_service
    return [
        {
            "alert": "RagServiceHighErrorRate",
            "expr": metrics.above(metrics.rag_error_ratio(recipe, window), alerts.max_error_rate),
            "for": metrics.duration(alerts.duration),
            "labels": _labels(recipe),
            "annotations": {
                "summary": f"{recipe.name} ({recipe.environment}, namespace {ns}): more than "
                f"{_percent(alerts.max_error_rate)} of RAG queries fail",
                "description": "{{ $value | humanizePercentage }} of POST /query requests failed over the last "
                + f"{window} (threshold {_percent(alerts.max_error_rate)}).",
                "runbook": (
                    f"See `kubectl describe rayservice {service} -n {ns}` and its worker pods' logs. 502: the "
                    f"generation server failed (see {recipe.name}'s ModelServingHighErrorRate); 500: retrieval "
                    f"failed (did the index RayJob {common.names(recipe).rag_index} succeed?)."
                ),
            },
        }
    ]


def _labels(recipe) -> dict[str, str]:
    return {
        "severity": recipe.monitoring.alerts.severity,
        "recipe": recipe.name,
        "environment": recipe.environment,
        "namespace": recipe.deploy.namespace,
    }


def prometheus_rule(recipe) -> dict[str, Any]:
    groups = [{"name": f"{recipe.name}.serving", "rules": alert_rules(recipe)}]
    if recipe.monitoring.drift is not None:
        groups.append({"name": f"{recipe.name}.drift", "rules": drift_rules(recipe)})
    if rag_rules(recipe):
        groups.append({"name": f"{recipe.name}.rag", "rules": rag_rules(recipe)})
    return {
        "apiVersion": MONITORING_API,
        "kind": "PrometheusRule",
        "metadata": common.metadata(recipe, common.names(recipe).server, COMPONENT),
        "spec": {"groups": groups},
    }


# --- Grafana dashboard -------------------------------------------------------------------
def dashboard_uid(recipe) -> str:
    """Deterministic and unique per recipe and env ('_' is in no recipe or env name)."""
    uid = f"mlops-{recipe.name}_{recipe.environment}"
    if len(uid) <= GRAFANA_UID_MAX:
        return uid
    digest = hashlib.sha256(uid.encode()).hexdigest()[:8]
    return f"{uid[:GRAFANA_UID_MAX - 9]}-{digest}"


def _target(ref: str, expr: str, legend: str) -> dict[str, Any]:
    return {"refId": ref, "expr": expr, "legendFormat": legend, "datasource": DATASOURCE}


def _thresholds(threshold: float | None) -> dict[str, Any]:
    steps: list[dict[str, Any]] = [{"color": "green", "value": None}]
    if threshold is not None:
        steps.append({"color": "red", "value": threshold})
    return {"mode": "absolute", "steps": steps}


class _Layout:
    """Assigns panel ids (1, 2, ...) and grid positions, row by row (24 columns)."""

    def __init__(self) -> None:
        self.panels: list[dict[str, Any]] = []
        self.x = self.y = self.row_height = 0

    def add(self, panel: dict[str, Any], width: int, height: int) -> None:
        if self.x + width > 24:
            self.x, self.y, self.row_height = 0, self.y + self.row_height, 0
        panel["id"] = len(self.panels) + 1
        panel["gridPos"] = {"h": height, "w": width, "x": self.x, "y": self.y}
        self.x += width
        self.row_height = max(self.row_height, height)
        self.panels.append(panel)


def _stat(title: str, description: str, expr: str, unit: str, threshold: float | None = None) -> dict[str, Any]:
    return {
        "type": "stat",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": [_target("A", expr, title)],
        "fieldConfig": {"defaults": {"unit": unit, "thresholds": _thresholds(threshold)}, "overrides": []},
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
            "graphMode": "area",
            "justifyMode": "auto",
            "orientation": "auto",
            "textMode": "auto",
        },
    }


def _timeseries(
    title: str, description: str, targets: list[tuple[str, str]], unit: str, threshold: float | None = None
) -> dict[str, Any]:
    custom: dict[str, Any] = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10, "showPoints": "never"}
    custom["thresholdsStyle"] = {"mode": "line" if threshold is not None else "off"}
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "targets": [_target(chr(ord("A") + i), expr, legend) for i, (expr, legend) in enumerate(targets)],
        "fieldConfig": {
            "defaults": {"unit": unit, "min": 0, "custom": custom, "thresholds": _thresholds(threshold)},
            "overrides": [],
        },
        "options": {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
    }


def dashboard(recipe) -> dict[str, Any]:
    w = DASHBOARD_WINDOW
    alerts, drift = recipe.monitoring.alerts, recipe.monitoring.drift
    p99 = alerts.max_latency_p99_ms / 1000
    layout = _Layout()
    stat_width = 6 if drift is not None else 8
    layout.add(_stat("Requests per second", "All requests answered.", metrics.request_rate(recipe, w), "reqps"), stat_width, 4)
    layout.add(_stat("Error rate", "Failed / all requests; red above the alert threshold.",
                     metrics.error_ratio(recipe, w), "percentunit", alerts.max_error_rate), stat_width, 4)
    layout.add(_stat("p99 latency", "Red above the alert threshold.",
                     metrics.latency_quantile(recipe, 0.99, w), metrics.LATENCY_UNIT, p99), stat_width, 4)
    if drift is not None:
        layout.add(_stat("Drift score", f"Dataset drift ({drift.method}) of the last check; red above the threshold.",
                         metrics.drift_score(recipe), "none", drift.threshold), stat_width, 4)

    layout.add(_timeseries("Requests per second", "All requests answered by the serving pods.",
                           [(metrics.request_rate(recipe, w), "requests")], "reqps"), 12, 8)
    layout.add(_timeseries("Latency", "Request latency quantiles; the line is the p99 alert threshold.",
                           [(metrics.latency_quantile(recipe, q, w), f"p{round(q * 100)}") for q in metrics.QUANTILES],
                           metrics.LATENCY_UNIT, p99), 12, 8)
    layout.add(_timeseries("Error rate", "Failed / all requests; the line is the alert threshold.",
                           [(metrics.error_ratio(recipe, w), "errors")], "percentunit", alerts.max_error_rate), 12, 8)
    version = metrics.version_labels(recipe)[0]
    layout.add(_timeseries("Traffic per model version",
                           "Requests per second by model version (vLLM, SGLang, TGI: by track; Ray Serve LLM: one "
                           "version).",
                           [(metrics.traffic_by_version(recipe, w), f"{{{{{version}}}}}")], "reqps"), 12, 8)
    if drift is not None:
        layout.add(_timeseries("Drift score per feature", "Latest drift score of each feature; the line is the threshold.",
                               [(metrics.drift_scores(recipe), "{{feature}}")], "none", drift.threshold), 12, 8)
    if recipe.serving.backend == "vllm":
        layout.add(_timeseries("Finished requests by reason", "Requests the vLLM engine finished (stop, length, abort).",
                               [(metrics.finished_requests(recipe, w), "{{finished_reason}}")], "reqps"), 12, 8)
    if recipe.serving.backend == "sglang":
        _sglang_panels(recipe, layout)
    if recipe.serving.backend == "tgi":
        layout.add(_timeseries("Queue size", "Requests waiting in each TGI pod's queue.",
                               [(metrics.queue_size(recipe), "{{pod}}")], "short"), 12, 8)
    if recipe.serving.backend == "ray_serve":
        layout.add(_timeseries("Rollout weight per version", "Percent of traffic the serving app routes to each version.",
                               [(metrics.rollout_weight(recipe), "{{version}}")], "percent"), 12, 8)
    layout.add(_timeseries("CPU", "CPU cores used by each serving pod.", [(metrics.cpu_usage(recipe, w), "{{pod}}")],
                           "short"), 12, 8)
    layout.add(_timeseries("Memory", "Working-set memory of each serving pod.",
                           [(metrics.memory_working_set(recipe), "{{pod}}")], "bytes"), 12, 8)
    if recipe.serving.resources.gpu > 0:
        layout.add(_timeseries("GPU utilisation", "Average GPU utilisation of each serving pod (DCGM).",
                               [(metrics.gpu_utilization(recipe), "{{pod}}")], "percent"), 12, 8)
    if getattr(recipe, "rag", None) is not None:
        layout.add(_timeseries("RAG queries per second", "POST /query requests the RAG service answered.",
                               [(metrics.rag_request_rate(recipe, w), "queries")], "reqps"), 8, 8)
        layout.add(_timeseries("RAG error rate", "Failed / all RAG queries; the line is the alert threshold.",
                               [(metrics.rag_error_ratio(recipe, w), "errors")], "percentunit",
                               alerts.max_error_rate), 8, 8)
        layout.add(_timeseries("RAG latency", "Query latency quantiles, retrieval and generation; the serving "
                               "app's histogram ends at 1 s, so 1 s reads as 1 s or more.",
                               [(metrics.rag_latency_quantile(recipe, q, w), f"p{round(q * 100)}")
                                for q in metrics.QUANTILES], metrics.LATENCY_UNIT), 8, 8)

    description = " ".join(line.strip() for line in common.header(recipe, "").splitlines())
    return {
        "id": None,
        "uid": dashboard_uid(recipe),
        "title": f"{recipe.name} ({recipe.environment}): model serving",
        "description": description,
        "tags": ["mlops", recipe.name, recipe.environment],
        "editable": False,
        "graphTooltip": 1,
        "refresh": metrics.duration(recipe.monitoring.dashboard.refresh),
        "schemaVersion": GRAFANA_SCHEMA_VERSION,
        "version": 1,
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "timezone": "utc",
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "weekStart": "",
        "links": [],
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Prometheus",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                    "includeAll": False,
                    "multi": False,
                    "options": [],
                    "refresh": 1,
                    "regex": "",
                    "skipUrlSync": False,
                }
            ]
        },
        "panels": layout.panels,
    }


def _sglang_panels(recipe, layout: _Layout) -> None:
    """SGLang's engine: time to first token, running and queued requests, generation
    throughput and KV cache use (its own `sglang:*` metrics, metrics_sglang.py)."""
    s = metrics.scope(recipe)
    layout.add(_timeseries("Time to first token", "Quantiles of the time SGLang takes to the first generated token.",
                           [(sglang.time_to_first_token(s, q, DASHBOARD_WINDOW), f"p{round(q * 100)}")
                            for q in metrics.QUANTILES], metrics.LATENCY_UNIT), 12, 8)
    layout.add(_timeseries("Running and queued requests", "Requests each SGLang pod decodes, and those waiting.",
                           [(sglang.running(s), "running {{pod}}"), (sglang.queued(s), "queued {{pod}}")], "short"), 12, 8)
    layout.add(_timeseries("Generation throughput", "Tokens each SGLang pod generates per second.",
                           [(sglang.throughput(s), "{{pod}}")], "short"), 12, 8)
    layout.add(_timeseries("KV cache usage", "Share of each SGLang pod's KV cache pool in use.",
                           [(sglang.token_usage(s), "{{pod}}")], "percentunit"), 12, 8)


def render(recipe) -> list[Artifact]:
    m = recipe.monitoring
    if not m.metrics.enabled:
        return []
    artifacts = [Artifact("k8s/prometheusrule.yaml", common.yaml_text(recipe, prometheus_rule(recipe)))]
    if not metrics.on_ray(recipe):
        artifacts.append(Artifact("k8s/servicemonitor.yaml", common.yaml_text(recipe, service_monitor(recipe))))
    if m.dashboard.enabled:
        artifacts.append(Artifact("monitoring/grafana-dashboard.json", common.json_text(dashboard(recipe))))
    return artifacts
