"""The serving app's Prometheus metrics, built from the contract in
framework.contracts.metrics (APP_METRICS): names, help, labels and buckets come from there.

Each app has its own prometheus_client registry (two apps in one process, as in tests,
never share series), exposed at /metrics. On Ray Serve a `RayMirror` records the same
measurements with ray.util.metrics, which Ray's exporter publishes on every pod's
metrics port with the `ray_` prefix the queries expect (contracts/metrics.py: RAY_PREFIX).
The per-request series (requests, their duration, those in flight) are counted in plain
Python on the hot path, with no lock (the app's event loop is their one writer), and become
Prometheus samples when scraped (`_RequestSeries.collect`, the same exposition
prometheus_client's Counter, Histogram and Gauge give); the per-batch and rollout series
are prometheus_client's own. Where the app stands in for the recipe's Triton, /metrics also
carries Triton's own request series (triton_metrics.py), which that recipe's queries read.
"""

from __future__ import annotations

import asyncio
import time
from bisect import bisect_left
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.utils import floatToGoString

from framework.contracts.metrics import APP_METRICS, BATCH_SIZE, INFLIGHT, REQUEST_DURATION, REQUESTS, ROLLOUT_WEIGHT, MetricSpec

CONTENT_TYPE = CONTENT_TYPE_LATEST


def _prometheus(spec: MetricSpec, registry: CollectorRegistry) -> Any:
    kinds = {"counter": Counter, "gauge": Gauge, "histogram": Histogram}
    kwargs: dict[str, Any] = {"labelnames": spec.labels, "registry": registry}
    if spec.kind == "histogram":
        kwargs["buckets"] = spec.buckets
    return kinds[spec.kind](spec.name, spec.help, **kwargs)


class _RequestSeries:
    """REQUESTS, REQUEST_DURATION and INFLIGHT as plain counts, collected at scrape time."""

    def __init__(self):
        self.bounds = tuple(float(b) for b in REQUEST_DURATION.buckets)
        self.counts: dict[tuple[str, str, int], int] = {}
        self.durations: dict[tuple[str, str], list[float]] = {}  # a count per bucket (+Inf last), then the sum
        self.created: dict[tuple, float] = {}
        self.inflight = 0

    def add(self, model: str, version: str, status: int, seconds: float) -> None:
        key = (model, version, status)
        count = self.counts.get(key)
        if count is None:
            self.created[key] = time.time()
            count = 0
        self.counts[key] = count + 1
        series = self.durations.get(key[:2])
        if series is None:
            series = self.durations[key[:2]] = [0] * (len(self.bounds) + 1) + [0.0]
            self.created[key[:2]] = time.time()
        series[bisect_left(self.bounds, seconds)] += 1
        series[-1] += seconds

    def describe(self) -> list:
        return []  # names checked by the registry at collect time, as for any custom collector

    def collect(self):
        requests = CounterMetricFamily(REQUESTS.name, REQUESTS.help, labels=REQUESTS.labels)
        for (model, version, status), count in list(self.counts.items()):
            requests.add_metric([model, version, str(status)], count, created=self.created[(model, version, status)])
        duration = HistogramMetricFamily(REQUEST_DURATION.name, REQUEST_DURATION.help, labels=REQUEST_DURATION.labels)
        created = GaugeMetricFamily(f"{REQUEST_DURATION.name}_created", REQUEST_DURATION.help, labels=REQUEST_DURATION.labels)
        for key, series in list(self.durations.items()):
            buckets, total = [], 0
            for bound, count in zip((*self.bounds, float("inf")), series):
                total += count
                buckets.append((floatToGoString(bound), total))
            duration.add_metric(list(key), buckets, series[-1])
            created.add_metric(list(key), self.created[key])
        yield requests
        yield duration
        yield created
        yield GaugeMetricFamily(INFLIGHT.name, INFLIGHT.help, value=self.inflight)


class ServingMetrics:
    """`triton`: {model label: repository name} of models whose Triton series to keep."""

    def __init__(self, mirror: Any = None, triton: dict[str, str] | None = None):
        self.registry = CollectorRegistry(auto_describe=True)
        per_request = (REQUESTS.name, REQUEST_DURATION.name, INFLIGHT.name)
        built = {spec.name: _prometheus(spec, self.registry) for spec in APP_METRICS if spec.name not in per_request}
        self._series = _RequestSeries()
        self.registry.register(self._series)
        self._batch = built[BATCH_SIZE.name]
        self._weight = built[ROLLOUT_WEIGHT.name]
        self._weights: dict[str, set[str]] = {}
        self.mirror = mirror
        self.triton = None
        if triton:
            from framework.runtime.serving.triton_metrics import TritonSeries

            self.triton = TritonSeries(triton)

    def loaded(self, model: str, versions: list[str]) -> None:
        """The versions the app loaded (Triton's series exist from load on)."""
        if self.triton is not None:
            self.triton.loaded(model, versions)

    def request(self, model: str, version: str, status: int, seconds: float) -> None:
        self._series.add(model, version, status, seconds)
        if self.triton is not None:
            self.triton.add(model, version, status, seconds)
        if self.mirror is not None:
            self.mirror.request(model, version, status, seconds)

    def batch(self, rows: int) -> None:
        self._batch.observe(rows)
        if self.mirror is not None:
            self.mirror.batch(rows)

    def started(self) -> None:
        self._series.inflight += 1
        if self.mirror is not None:
            self.mirror.inflight(1)

    def finished(self) -> None:
        self._series.inflight -= 1
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
        text = generate_latest(self.registry)
        # Triton's counters carry no `_total`, which prometheus_client's families would add.
        return text + self.triton.exposition() if self.triton is not None else text

    def flush(self) -> None:
        """Hand what the mirror summed over to it (the app's shutdown)."""
        if self.mirror is not None:
            self.mirror.flush()


class RayMirror:
    """The same series through ray.util.metrics (Ray Serve replicas). Each ray.util.metrics
    call costs microseconds (tags checked, the value handed to Ray's C++ recorder): the
    request counts and the in-flight gauge are summed here and handed over at most once
    every FLUSH_S (on the event loop, and at shutdown: `flush`); each duration and batch
    size is observed as it comes (a histogram takes values one at a time)."""

    FLUSH_S = 1.0

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
        self._inflight_sent: int | None = None
        self._counts: dict[tuple[str, str, int], int] = {}
        self._tags: dict[tuple[str, str], dict[str, str]] = {}
        self._timer: Any = None
        self._weighted: dict[str, set[str]] = {}

    def request(self, model: str, version: str, status: int, seconds: float) -> None:
        key = (model, version, status)
        self._counts[key] = self._counts.get(key, 0) + 1
        tags = self._tags.get(key[:2])
        if tags is None:
            tags = self._tags[key[:2]] = {"model": model, "version": version}
        self._duration.observe(seconds, tags)
        self._later()

    def batch(self, rows: int) -> None:
        self._batch.observe(rows)

    def inflight(self, delta: int) -> None:
        self._inflight_now += delta
        self._later()

    def _later(self) -> None:
        if self._timer is None:
            try:
                self._timer = asyncio.get_running_loop().call_later(self.FLUSH_S, self.flush)
            except RuntimeError:  # no event loop here: hand them over now
                self.flush()

    def flush(self) -> None:
        """Hand the summed counts and the in-flight gauge to Ray."""
        self._timer = None
        counts, self._counts = self._counts, {}
        for (model, version, status), count in counts.items():
            self._requests.inc(count, {"model": model, "version": version, "status": str(status)})
        if self._inflight_now != self._inflight_sent:
            self._inflight.set(self._inflight_now)
            self._inflight_sent = self._inflight_now

    def weights(self, model: str, weights: dict[str, float]) -> None:
        # ray.util.metrics cannot remove a series: a version the router dropped reads 0.
        for version in self._weighted.get(model, set()) - set(weights):
            self._weight.set(0.0, {"model": model, "version": version})
        for version, share in weights.items():
            self._weight.set(100.0 * share, {"model": model, "version": version})
        self._weighted[model] = self._weighted.get(model, set()) | set(weights)


__all__ = ["ServingMetrics", "RayMirror", "CONTENT_TYPE"]
