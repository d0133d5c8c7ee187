"""The serving app's Prometheus metrics, built from the contract in
framework.contracts.metrics (APP_METRICS): names, help, labels and buckets come from there.

Each app has its own prometheus_client registry (two apps in one process, as in tests,
never share series), exposed at /metrics. On Ray Serve a `RayMirror` records the same
measurements with ray.util.metrics, which Ray's exporter publishes on every pod's
metrics port with the `ray_` prefix the queries expect (contracts/metrics.py: RAY_PREFIX).
Label children are cached: the hot path does a dict lookup, not prometheus_client's
label resolution.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from framework.contracts.metrics import APP_METRICS, BATCH_SIZE, INFLIGHT, REQUEST_DURATION, REQUESTS, ROLLOUT_WEIGHT, MetricSpec

CONTENT_TYPE = CONTENT_TYPE_LATEST


def _prometheus(spec: MetricSpec, registry: CollectorRegistry) -> Any:
    kinds = {"counter": Counter, "gauge": Gauge, "histogram": Histogram}
    kwargs: dict[str, Any] = {"labelnames": spec.labels, "registry": registry}
    if spec.kind == "histogram":
        kwargs["buckets"] = spec.buckets
    return kinds[spec.kind](spec.name, spec.help, **kwargs)


class ServingMetrics:
    def __init__(self, mirror: Any = None):
        self.registry = CollectorRegistry(auto_describe=True)
        built = {spec.name: _prometheus(spec, self.registry) for spec in APP_METRICS}
        self._requests = built[REQUESTS.name]
        self._duration = built[REQUEST_DURATION.name]
        self._batch = built[BATCH_SIZE.name]
        self._inflight = built[INFLIGHT.name]
        self._weight = built[ROLLOUT_WEIGHT.name]
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._weights: dict[str, set[str]] = {}
        self.mirror = mirror

    def request(self, model: str, version: str, status: int, seconds: float) -> None:
        key = (model, version, status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                self._requests.labels(model, version, str(status)),
                self._duration.labels(model, version),
            )
        children[0].inc()
        children[1].observe(seconds)
        if self.mirror is not None:
            self.mirror.request(model, version, status, seconds)

    def batch(self, rows: int) -> None:
        self._batch.observe(rows)
        if self.mirror is not None:
            self.mirror.batch(rows)

    def started(self) -> None:
        self._inflight.inc()
        if self.mirror is not None:
            self.mirror.inflight(1)

    def finished(self) -> None:
        self._inflight.dec()
        if self.mirror is not None:
            self.mirror.inflight(-1)

    def set_weights(self, model: str, weights: dict[str, float]) -> None:
        """The router's shares of traffic, exported in percent."""
        for version in self._weights.get(model, set()) - set(weights):
            self._weight.remove(model, version)
        for version, share in weights.items():
            self._weight.labels(model, version).set(100.0 * share)
        self._weights[model] = set(weights)
        if self.mirror is not None:
            self.mirror.weights(model, weights)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class RayMirror:
    """The same series through ray.util.metrics (Ray Serve replicas)."""

    def __init__(self):
        from ray.util import metrics as ray_metrics

        # Ray's exporter adds `_total` to counters itself.
        self._requests = ray_metrics.Counter(REQUESTS.name.removesuffix("_total"), REQUESTS.help, tag_keys=REQUESTS.labels)
        self._duration = ray_metrics.Histogram(
            REQUEST_DURATION.name, REQUEST_DURATION.help, boundaries=list(REQUEST_DURATION.buckets), tag_keys=REQUEST_DURATION.labels
        )
        self._batch = ray_metrics.Histogram(BATCH_SIZE.name, BATCH_SIZE.help, boundaries=[float(b) for b in BATCH_SIZE.buckets])
        self._inflight = ray_metrics.Gauge(INFLIGHT.name, INFLIGHT.help)
        self._weight = ray_metrics.Gauge(ROLLOUT_WEIGHT.name, ROLLOUT_WEIGHT.help, tag_keys=ROLLOUT_WEIGHT.labels)
        self._inflight_now = 0
        self._weighted: dict[str, set[str]] = {}

    def request(self, model: str, version: str, status: int, seconds: float) -> None:
        tags = {"model": model, "version": version}
        self._requests.inc(1, {**tags, "status": str(status)})
        self._duration.observe(seconds, tags)

    def batch(self, rows: int) -> None:
        self._batch.observe(rows)

    def inflight(self, delta: int) -> None:
        self._inflight_now += delta
        self._inflight.set(self._inflight_now)

    def weights(self, model: str, weights: dict[str, float]) -> None:
        # ray.util.metrics cannot remove a series: a version the router dropped reads 0.
        for version in self._weighted.get(model, set()) - set(weights):
            self._weight.set(0.0, {"model": model, "version": version})
        for version, share in weights.items():
            self._weight.set(100.0 * share, {"model": model, "version": version})
        self._weighted[model] = self._weighted.get(model, set()) | set(weights)


__all__ = ["ServingMetrics", "RayMirror", "CONTENT_TYPE"]
