"""PromQL over every server's metrics: what the PrometheusRule, the Argo
AnalysisTemplate, the Grafana dashboard and `mlops rollout` ask Prometheus. The
framework's own metrics (the serving app's, the RAG service's, the drift job's: names,
help, labels, buckets, who exposes them how) are the contract of
framework/contracts/metrics.py; the servers' own metric names are below. Every query is
built here, so a renamed metric or label changes in one place.

Conventions
* Latency is always in **seconds** (Prometheus' base unit): every latency query
  returns seconds, and thresholds given in ms by the recipe are divided by 1000.
* Error rate is a **ratio** in [0, 1] (failed / all requests), like the recipe's
  `max_error_rate`.
* A query's `window` is a Prometheus range (`5m`, `1h30m`) or a Grafana variable
  (`$__rate_interval`).
* Scope: series scraped through the recipe's Service carry `namespace` and `service`
  (set by the Prometheus operator); queries select `namespace="<deploy.namespace>",
  service="<names.service>"`. Ray Serve replicas are not behind a Service of ours:
  their series are selected by `namespace` and the app's `model` label (Ray Serve
  LLM's by `namespace` and Serve's `application`).

Who exposes what (besides the framework's processes: contracts/metrics.py)
* Triton (backend triton): its own metrics on port `metrics` (8002), started with
  `--metrics-config=summary_latencies=true` (`TRITON_ARGS`): requests are
  `nv_inference_request_success` + `nv_inference_request_failure` (labels model,
  version, and reason on failures); latency quantiles come from the summary
  `nv_inference_request_summary_us{quantile=...}` (microseconds, per pod, a sliding
  window): a summary's quantiles cannot be aggregated, so we take the worst pod's
  worst value in the window (an upper bound, the safe side for alerts and analysis).
  Triton's default summary quantiles (0.5, 0.9, 0.95, 0.99, 0.999) cover `QUANTILES`.
* vLLM (backend vllm): its OpenAI server exposes on its API port (`http`, path
  /metrics) the engine's `vllm:*` metrics and, through
  prometheus-fastapi-instrumentator, `http_requests_total{handler,method,status}`
  with status grouped as "2xx".."5xx". Requests and errors count the OpenAI routes
  (`handler=~"/v1/.+"`, 5xx = errors): `vllm:request_success_total` only counts
  requests the engine finished (by `finished_reason`), never the failed ones, so it
  is shown on the dashboard but not used for ratios. Latency is
  `vllm:e2e_request_latency_seconds` (histogram, label model_name). vLLM has no
  model-version label: traffic per version uses the pods' track label.
* TGI (backend tgi): its router exposes on its API port (`http`, path /metrics)
  `tgi_request_count` (every request, the OpenAI routes included),
  `tgi_request_failure{err}` (err: validation, overloaded, generation, incomplete,
  dropped...; `validation` is the client's error, like a 4xx, and is not counted) and
  `tgi_request_duration` (histogram, seconds, successful requests), `tgi_queue_size`.
  Like vLLM, no model-version label: traffic per version uses the track.
* SGLang (backend sglang): `sglang:*` on its API port; the names and their queries
  are in metrics_sglang.py (requests and errors from `sglang:http_responses_total`,
  latency from `sglang:e2e_request_latency_seconds`). Versions by the track.
* Ray Serve LLM (backend ray_serve_llm): no app of ours, so Ray Serve's own proxy
  metrics on Ray's port `metrics`: `ray_serve_num_http_requests_total{application,
  route,method,status_code}` (5xx = errors) and `ray_serve_http_request_latency_ms`
  (histogram, milliseconds), selected by `namespace` and `application` (the recipe
  name), Serve's health routes (`/-/...`) left out.
* The RAG service's series are read through `rag_scope`; its quantiles read "1 s" for
  anything slower, which is why it gets no latency alert.
* Tracks: every serving pod carries the pod label `TRACK_LABEL`
  (`mlops.dev/track: stable|candidate`); the ServiceMonitor copies it to the series
  as `TRACK` (`mlops_dev_track`), so the canary analysis judges the candidate alone.
* Infrastructure: cAdvisor (`container_cpu_usage_seconds_total`,
  `container_memory_working_set_bytes`) and NVIDIA's dcgm-exporter
  (`DCGM_FI_DEV_GPU_UTIL`, percent, with `namespace`/`pod` of the workload: the GPU
  operator's ServiceMonitor scrapes it with honorLabels).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from framework.contracts.metrics import (
    APP_METRICS,
    DRIFT_SCORE,
    OVERALL_FEATURE,
    RAG_VERSION,
    RAY_PREFIX,
    REQUEST_DURATION,
    REQUESTS,
    ROLLOUT_WEIGHT,
    TRITON_FAILURE,
    TRITON_LATENCY_SUMMARY,
    TRITON_SUCCESS,
)
from framework.targets import metrics_sglang as sglang

# Where Argo Rollouts and `mlops rollout` query Prometheus (the prometheus-operator's
# governing Service in the kube-prometheus-stack's namespace).
PROMETHEUS_ADDRESS = "http://prometheus-operated.monitoring.svc:9090"

LATENCY_UNIT = "s"  # every latency query returns seconds
QUANTILES = (0.5, 0.95, 0.99)
MIN_RATE_WINDOW_SECONDS = 300  # rate() windows: at least 5m and 4 scrape intervals


ERROR_STATUS = "5.."  # regex over the status label: server errors

# --- what the servers expose -----------------------------------------------------------
TRITON_ARGS = ("--metrics-config=summary_latencies=true",)

VLLM_HTTP_REQUESTS = "http_requests_total"
VLLM_API_HANDLERS = "/v1/.+"  # the OpenAI routes (health, metrics and the like excluded)
VLLM_ERROR_STATUS = "5xx"
VLLM_E2E_LATENCY = "vllm:e2e_request_latency_seconds"
VLLM_REQUEST_SUCCESS = "vllm:request_success_total"

TGI_REQUESTS = "tgi_request_count"
TGI_FAILURES = "tgi_request_failure"
TGI_CLIENT_ERRORS = "validation"  # err label values that are the client's fault
TGI_DURATION = "tgi_request_duration"  # histogram, seconds
TGI_QUEUE = "tgi_queue_size"

RAY_SERVE_REQUESTS = "ray_serve_num_http_requests_total"
RAY_SERVE_LATENCY_MS = "ray_serve_http_request_latency_ms"  # histogram, milliseconds
RAY_SERVE_INTERNAL_ROUTES = "/-/.*"  # Serve's health and routes endpoints

CPU_SECONDS = "container_cpu_usage_seconds_total"
MEMORY_WORKING_SET = "container_memory_working_set_bytes"
GPU_UTILIZATION = "DCGM_FI_DEV_GPU_UTIL"

# --- pod labels Prometheus sees ---------------------------------------------------------
TRACK_LABEL = "mlops.dev/track"
STABLE, CANDIDATE = "stable", "candidate"


def prometheus_label(pod_label: str) -> str:
    """A pod label as the Prometheus operator copies it (podTargetLabels)."""
    return re.sub(r"[^A-Za-z0-9_]", "_", pod_label)


TRACK = prometheus_label(TRACK_LABEL)  # mlops_dev_track

# Every series name a query of this module reads (tests check artifacts against it).
SERIES_NAMES = frozenset(
    [s for spec in APP_METRICS for s in spec.series]
    + [RAY_PREFIX + s for spec in APP_METRICS for s in spec.series]
    + list(DRIFT_SCORE.series)
    + [TRITON_SUCCESS, TRITON_FAILURE, TRITON_LATENCY_SUMMARY]
    + [VLLM_HTTP_REQUESTS, f"{VLLM_E2E_LATENCY}_bucket", VLLM_REQUEST_SUCCESS]
    + [TGI_REQUESTS, TGI_FAILURES, f"{TGI_DURATION}_bucket", TGI_QUEUE]
    + list(sglang.SERIES)
    + [RAY_SERVE_REQUESTS, f"{RAY_SERVE_LATENCY_MS}_bucket"]
    + [CPU_SECONDS, MEMORY_WORKING_SET, GPU_UTILIZATION]
)


# --- durations ---------------------------------------------------------------------------
_PART = re.compile(r"([0-9]+)(ms|s|m|h|d|w)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_WINDOW = re.compile(r"^(?:[0-9]+(?:ms|s|m|h|d|w|y))+$|^\$__(?:rate_interval|interval|range)$")


def seconds(duration: str) -> float:
    """'1h30m' -> 5400.0 (the recipe's duration syntax)."""
    return sum(int(n) * _UNITS[u] for n, u in _PART.findall(duration))


def duration(value: str | float) -> str:
    """A duration (text or seconds) as h/m/s/ms, largest unit first: what Prometheus,
    the Prometheus operator and Go's time.ParseDuration (Argo) all accept ('1d' -> '24h')."""
    total_ms = round((seconds(value) if isinstance(value, str) else value) * 1000)
    if total_ms <= 0:
        return "0s"
    text = ""
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        count, total_ms = divmod(total_ms, size)
        if count:
            text += f"{count}{unit}"
    return text


def rate_window(recipe) -> str:
    """The rate() window for alerts: at least 5m and four scrape intervals."""
    scrape = seconds(recipe.monitoring.metrics.scrape_interval)
    return duration(max(MIN_RATE_WINDOW_SECONDS, 4 * scrape))


# --- scope -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Scope:
    """Label matchers that select one recipe's series: ((label, op, value), ...)."""

    matchers: tuple[tuple[str, str, str], ...]

    def add(self, label: str, value: str, op: str = "=") -> Scope:
        return Scope(self.matchers + ((label, op, value),))

    def selector(self, name: str, *extra: tuple[str, str, str]) -> str:
        inner = ",".join(f"{label}{op}{json.dumps(value)}" for label, op, value in self.matchers + extra)
        return f"{name}{{{inner}}}"


def _server_name(recipe) -> str:
    return f"{recipe.name}-server"  # = common.names(recipe).server (kept import-free)


def on_ray(recipe) -> bool:
    """KubeRay owns the serving pods (a RayService): no Service, Deployment or track of ours."""
    return recipe.serving.backend in ("ray_serve", "ray_serve_llm")


def tracks_versions(recipe) -> bool:
    """The server has no model-version label: versions are told apart by the pods' track."""
    return recipe.serving.backend in ("vllm", "sglang", "tgi")


def scope(recipe, service: str | None = None, track: str | None = None) -> Scope:
    """The recipe's serving series; `service` picks another Service (blue/green's preview),
    `track` one track (stable or candidate)."""
    ns = ("namespace", "=", recipe.deploy.namespace)
    if recipe.serving.backend == "ray_serve_llm":
        result = Scope((ns, ("application", "=", recipe.name)))
    elif on_ray(recipe):
        result = Scope((ns, ("model", "=", recipe.registered_model)))
    else:
        result = Scope((ns, ("service", "=", service or recipe.name)))
    return result.add(TRACK, track) if track else result


def _window(window: str) -> str:
    if not _WINDOW.match(window):
        raise ValueError(f"not a Prometheus range or Grafana interval: {window!r}")
    return window


def number(value: float) -> str:
    """A threshold as PromQL and Argo expressions write it (0.01, 250, 1e-05)."""
    return repr(float(value)) if isinstance(value, float) else str(value)


def _sum(by: tuple[str, ...], expr: str) -> str:
    return f"sum by ({', '.join(by)}) ({expr})" if by else f"sum({expr})"


# --- requests and errors -----------------------------------------------------------------
def _requests(recipe, fn: str, window: str, s: Scope, by: tuple[str, ...]) -> str:
    w = _window(window)
    backend = recipe.serving.backend
    if backend == "triton":
        ok = _sum(by, f"{fn}({s.selector(TRITON_SUCCESS)}[{w}])")
        failed = _sum(by, f"{fn}({s.selector(TRITON_FAILURE)}[{w}])")
        # Failure counters may be absent (created on the first failure): count them as 0.
        return f"({ok} + ({failed} or {ok} * 0))"
    if backend == "vllm":
        return _sum(by, f"{fn}({s.selector(VLLM_HTTP_REQUESTS, ('handler', '=~', VLLM_API_HANDLERS))}[{w}])")
    if backend == "sglang":
        return _sum(by, f"{fn}({sglang.responses(s)}[{w}])")
    if backend == "tgi":
        return _sum(by, f"{fn}({s.selector(TGI_REQUESTS)}[{w}])")
    if backend == "ray_serve_llm":
        return _sum(by, f"{fn}({s.selector(RAY_SERVE_REQUESTS, ('route', '!~', RAY_SERVE_INTERNAL_ROUTES))}[{w}])")
    return _sum(by, f"{fn}({s.selector(RAY_PREFIX + REQUESTS.name)}[{w}])")


def _errors(recipe, window: str, s: Scope, by: tuple[str, ...]) -> str:
    w = _window(window)
    backend = recipe.serving.backend
    if backend == "triton":
        return _sum(by, f"rate({s.selector(TRITON_FAILURE)}[{w}])")
    if backend == "vllm":
        sel = s.selector(VLLM_HTTP_REQUESTS, ("handler", "=~", VLLM_API_HANDLERS), ("status", "=", VLLM_ERROR_STATUS))
        return _sum(by, f"rate({sel}[{w}])")
    if backend == "sglang":
        return _sum(by, f"rate({sglang.responses(s, errors=True)}[{w}])")
    if backend == "tgi":
        return _sum(by, f"rate({s.selector(TGI_FAILURES, ('err', '!~', TGI_CLIENT_ERRORS))}[{w}])")
    if backend == "ray_serve_llm":
        sel = s.selector(RAY_SERVE_REQUESTS, ("route", "!~", RAY_SERVE_INTERNAL_ROUTES), ("status_code", "=~", ERROR_STATUS))
        return _sum(by, f"rate({sel}[{w}])")
    return _sum(by, f"rate({s.selector(RAY_PREFIX + REQUESTS.name, ('status', '=~', ERROR_STATUS))}[{w}])")


def request_rate(recipe, window: str, s: Scope | None = None, by: tuple[str, ...] = ()) -> str:
    """Requests per second."""
    return _requests(recipe, "rate", window, s or scope(recipe), by)


def request_count(recipe, window: str, s: Scope | None = None) -> str:
    """Requests answered during the window."""
    return _requests(recipe, "increase", window, s or scope(recipe), ())


def error_ratio(recipe, window: str, s: Scope | None = None, by: tuple[str, ...] = ()) -> str:
    """Failed / all requests, in [0, 1] (no series when there was no request)."""
    s = s or scope(recipe)
    total = request_rate(recipe, window, s, by)
    # Error series may not exist yet: then 0 (with the labels of a series that does).
    present = (
        _sum(by, f"rate({s.selector(TRITON_SUCCESS)}[{_window(window)}])") if recipe.serving.backend == "triton" else total
    )
    return f"({_errors(recipe, window, s, by)} or {present} * 0) / {total}"


def version_labels(recipe) -> tuple[str, ...]:
    """What tells model versions apart in the series of the backend (Ray Serve LLM
    serves one version: its application)."""
    if recipe.serving.backend == "ray_serve_llm":
        return ("application",)
    return (TRACK,) if tracks_versions(recipe) else ("version",)


def traffic_by_version(recipe, window: str, s: Scope | None = None) -> str:
    """Requests per second of each model version (vLLM, SGLang, TGI: of each track)."""
    return request_rate(recipe, window, s, version_labels(recipe))


def finished_requests(recipe, window: str, s: Scope | None = None) -> str:
    """vLLM only: requests the engine finished per second, by finished_reason."""
    s = s or scope(recipe)
    return f"sum by (finished_reason) (rate({s.selector(VLLM_REQUEST_SUCCESS)}[{_window(window)}]))"


def queue_size(recipe, s: Scope | None = None) -> str:
    """TGI only: requests waiting in each pod's queue."""
    s = s or scope(recipe)
    return f"sum by (pod) ({s.selector(TGI_QUEUE)})"


def rollout_weight(recipe, s: Scope | None = None) -> str:
    """Ray Serve only: the in-app router's percent of traffic per version."""
    s = s or scope(recipe)
    return f"max by (version) ({s.selector(RAY_PREFIX + ROLLOUT_WEIGHT.name)})"


# --- latency -----------------------------------------------------------------------------
def latency_quantile(recipe, quantile: float, window: str, s: Scope | None = None, by: tuple[str, ...] = ()) -> str:
    """The `quantile` of request latency, in seconds."""
    if quantile not in QUANTILES:
        raise ValueError(f"quantile {quantile} is not one of {QUANTILES}")
    s = s or scope(recipe)
    w = _window(window)
    backend = recipe.serving.backend
    if backend == "triton":
        sel = s.selector(TRITON_LATENCY_SUMMARY, ("quantile", "=", repr(quantile)))
        worst = f"max by ({', '.join(by)}) " if by else "max"
        return f"{worst}(max_over_time({sel}[{w}])) / 1000000"
    if backend == "ray_serve_llm":
        sel = s.selector(f"{RAY_SERVE_LATENCY_MS}_bucket", ("route", "!~", RAY_SERVE_INTERNAL_ROUTES))
        return f"histogram_quantile({number(quantile)}, sum by ({', '.join(('le', *by))}) (rate({sel}[{w}]))) / 1000"
    name = {
        "vllm": f"{VLLM_E2E_LATENCY}_bucket",
        "sglang": f"{sglang.E2E_LATENCY}_bucket",
        "tgi": f"{TGI_DURATION}_bucket",
    }.get(backend, f"{RAY_PREFIX}{REQUEST_DURATION.name}_bucket")
    return f"histogram_quantile({number(quantile)}, sum by ({', '.join(('le', *by))}) (rate({s.selector(name)}[{w}])))"


# --- the RAG service -----------------------------------------------------------------------
def rag_scope(recipe) -> Scope:
    """The RAG service's series (Ray Serve replicas: selected by namespace and labels)."""
    return Scope((
        ("namespace", "=", recipe.deploy.namespace),
        ("model", "=", recipe.registered_model),
        ("version", "=", RAG_VERSION),
    ))


def rag_request_rate(recipe, window: str) -> str:
    """RAG queries answered per second (every status)."""
    return _sum((), f"rate({rag_scope(recipe).selector(RAY_PREFIX + REQUESTS.name)}[{_window(window)}])")


def rag_error_ratio(recipe, window: str) -> str:
    """Failed (5xx: retrieval or generation failed) / all RAG queries, in [0, 1]."""
    total = rag_request_rate(recipe, window)
    sel = rag_scope(recipe).selector(RAY_PREFIX + REQUESTS.name, ("status", "=~", ERROR_STATUS))
    return f"({_sum((), f'rate({sel}[{_window(window)}])')} or {total} * 0) / {total}"


def rag_latency_quantile(recipe, quantile: float, window: str) -> str:
    """The `quantile` of RAG query latency, in seconds (at most the top bucket, 1 s)."""
    if quantile not in QUANTILES:
        raise ValueError(f"quantile {quantile} is not one of {QUANTILES}")
    sel = rag_scope(recipe).selector(f"{RAY_PREFIX}{REQUEST_DURATION.name}_bucket")
    return f"histogram_quantile({number(quantile)}, sum by (le) (rate({sel}[{_window(window)}])))"


# --- drift -------------------------------------------------------------------------------
def _drift_scope(recipe) -> Scope:
    return Scope((("namespace", "=", recipe.deploy.namespace), ("model", "=", recipe.registered_model)))


def drift_score(recipe, feature: str = OVERALL_FEATURE) -> str:
    """The latest drift score of one feature (default: the dataset's)."""
    return f"max({_drift_scope(recipe).selector(DRIFT_SCORE.name, ('feature', '=', feature))})"


def drift_scores(recipe) -> str:
    """The latest drift score of every feature (and `__overall__`)."""
    return f"max by (feature) ({_drift_scope(recipe).selector(DRIFT_SCORE.name)})"


# --- resources of the serving pods -------------------------------------------------------
def _pods(recipe) -> Scope:
    prefix = f"{recipe.name}-serve" if on_ray(recipe) else _server_name(recipe)  # RayService / Deployment pods
    return Scope((("namespace", "=", recipe.deploy.namespace), ("pod", "=~", f"{prefix}-.+")))


def cpu_usage(recipe, window: str) -> str:
    """CPU cores used by each serving pod (its containers, not the pause container)."""
    sel = _pods(recipe).selector(CPU_SECONDS, ("container", "!=", ""), ("container", "!=", "POD"))
    return f"sum by (pod) (rate({sel}[{_window(window)}]))"


def memory_working_set(recipe) -> str:
    """Working-set bytes of each serving pod (what the OOM killer looks at)."""
    sel = _pods(recipe).selector(MEMORY_WORKING_SET, ("container", "!=", ""), ("container", "!=", "POD"))
    return f"sum by (pod) ({sel})"


def gpu_utilization(recipe) -> str:
    """GPU utilisation (percent) of each serving pod, averaged over its GPUs."""
    return f"avg by (pod) ({_pods(recipe).selector(GPU_UTILIZATION)})"


# --- conditions --------------------------------------------------------------------------
def above(query: str, threshold: float) -> str:
    return f"{query} > {number(threshold)}"


def with_min_requests(query: str, recipe, window: str, minimum: int, s: Scope | None = None) -> str:
    """`query`, or no result while fewer than `minimum` requests were answered in the
    window (an Argo measurement is then inconclusive rather than judged on noise)."""
    return f"({query}) and on() ({request_count(recipe, window, s)} >= {minimum})"
