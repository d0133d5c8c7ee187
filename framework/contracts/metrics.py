"""The metrics the framework's own processes expose: connects the runtime (the serving
app and the RAG service export them, the drift job pushes them) and generate (the
PrometheusRule, the Argo AnalysisTemplate and the Grafana dashboard of
framework/targets/metrics.py and monitoring.py query them). Names, help, labels and
buckets are defined once here; a renamed metric or label changes in one place.

* The serving app (`mlops serve`, local apply, and Ray Serve): `APP_METRICS`. Locally it
  exposes them with prometheus_client under these names. On Ray Serve it records them
  with `ray.util.metrics`, whose exporter (port `metrics`, 8080, of every Ray pod)
  prefixes `RAY_PREFIX`: the queries read `RAY_PREFIX + name` there. `model` is the
  registered model name (`recipe.registered_model`), `version` its MLflow model
  version, `status` the HTTP status code as text ("200", "503"); 5xx are errors, 4xx
  are the client's.
* The RAG service (recipes with `rag`): the serving app's metric names, `model` the
  registered model and `version` always `RAG_VERSION`, whatever the backend generating
  its answers. On clusters it runs on Ray Serve, so its series carry the `ray_` prefix.
  Its latency includes generation, while the buckets end at 1 s: its quantiles read
  "1 s" for anything slower.
* Drift: the drift job (`mlops monitor`, a CronJob) pushes `DRIFT_SCORE{model, feature}`
  to the Pushgateway (`PUSHGATEWAY_ADDRESS`) with grouping key `job=DRIFT_JOB,
  namespace=<deploy.namespace>, model=<registered model>`; the Pushgateway is scraped
  with honor_labels, so the series keep those labels. `feature=OVERALL_FEATURE` is the
  dataset-level score.
* Triton (backend triton): the series of Triton's own that the queries of such a recipe
  read (`TRITON_*`); the serving app exports them too where it stands in for Triton
  (runtime/serving/triton_metrics.py), so the same queries read `mlops serve`.

Import-light on purpose (stdlib only).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricSpec:
    """One metric of the framework's processes: the process creates it from this."""

    name: str  # as exposed by prometheus_client (counters end in _total)
    kind: str  # counter | histogram | gauge
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] | None = None

    @property
    def series(self) -> tuple[str, ...]:
        """The series names Prometheus stores for it."""
        if self.kind == "histogram":
            return (f"{self.name}_bucket", f"{self.name}_sum", f"{self.name}_count")
        return (self.name,)


# --- the serving app (and the RAG service) ---------------------------------------------
REQUESTS = MetricSpec(
    "mlops_requests_total", "counter", "Prediction requests answered, by HTTP status code.", ("model", "version", "status")
)
REQUEST_DURATION = MetricSpec(
    "mlops_request_duration_seconds", "histogram", "Time to answer a prediction request, in seconds.",
    ("model", "version"), (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
BATCH_SIZE = MetricSpec(
    "mlops_batch_size", "histogram", "Rows in each batch the model ran.", (), (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
)
INFLIGHT = MetricSpec("mlops_inflight_requests", "gauge", "Requests being answered now.")
ROLLOUT_WEIGHT = MetricSpec(
    "mlops_rollout_weight", "gauge", "Percent of traffic the in-app router sends to a model version.", ("model", "version")
)
APP_METRICS = (REQUESTS, REQUEST_DURATION, BATCH_SIZE, INFLIGHT, ROLLOUT_WEIGHT)

RAG_VERSION = "rag"  # the version label of every RAG service series
RAY_PREFIX = "ray_"  # ray.util.metrics' exporter prefixes every application metric

# --- Triton's own series (targets/metrics.py queries them; the serving app mirrors them) ----
TRITON_SUCCESS = "nv_inference_request_success"
TRITON_FAILURE = "nv_inference_request_failure"
TRITON_LATENCY_SUMMARY = "nv_inference_request_summary_us"

# --- the drift job -------------------------------------------------------------------------
DRIFT_SCORE = MetricSpec(
    "model_drift_score", "gauge", "Drift score of a feature (PSI or Evidently) of served traffic vs. the reference.",
    ("model", "feature"),
)
OVERALL_FEATURE = "__overall__"
DRIFT_JOB = "mlops-drift"  # the Pushgateway grouping key's job
PUSHGATEWAY_ADDRESS = "http://prometheus-pushgateway.monitoring.svc:9091"  # the drift CronJob's PUSHGATEWAY_ADDRESS

__all__ = [
    "MetricSpec", "REQUESTS", "REQUEST_DURATION", "BATCH_SIZE", "INFLIGHT", "ROLLOUT_WEIGHT", "APP_METRICS",
    "RAG_VERSION", "RAY_PREFIX", "TRITON_SUCCESS", "TRITON_FAILURE", "TRITON_LATENCY_SUMMARY",
    "DRIFT_SCORE", "OVERALL_FEATURE", "DRIFT_JOB", "PUSHGATEWAY_ADDRESS",
]
