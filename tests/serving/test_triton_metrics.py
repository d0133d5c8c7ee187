"""The serving app of a Triton recipe exports Triton's own request series, as Triton 2.51
does with summary_latencies (names, types, labels, units), since the recipe's generated
alerts and dashboard query those (tests/monitor/test_prometheus_scrape.py asks a real
Prometheus)."""

from __future__ import annotations

import math

import httpx
from prometheus_client.parser import text_string_to_metric_families

from framework.runtime.serving import triton_metrics
from framework.runtime.serving.metrics import ServingMetrics
from tests.serving.conftest import inputs

REASONS = {"REJECTED", "CANCELED", "BACKEND", "OTHER"}
QUANTILES = {"0.5", "0.9", "0.95", "0.99", "0.999"}


def families(text: str) -> dict[str, object]:
    return {f.name: f for f in text_string_to_metric_families(text) if f.name.startswith("nv_inference")}


def _rows(n: int) -> list[dict]:
    """n churn rows in curl's form (columns by name)."""
    x = inputs(n, seed=3)
    return [{name: (v[i, 0].item() if hasattr(v[i, 0], "item") else v[i, 0]) for name, v in x.items()} for i in range(n)]


def test_the_app_counts_requests_as_triton_does(served):
    with httpx.Client(base_url=served.base, timeout=10) as http:
        before = families(http.get("/metrics").text)
        for _ in range(3):
            assert http.post("/v2/models/churn/infer", json=_rows(2)).status_code == 200
        assert http.post("/v2/models/churn/versions/1/infer", json=_rows(1)).status_code == 200
        assert http.post("/v2/models/churn/infer", content=b"{").status_code == 400  # turned away: not counted
        assert http.post("/v2/models/churn/versions/7/infer", json=_rows(1)).status_code == 404
        text = http.get("/metrics").text
    assert "nv_inference_request_success_total" not in text  # Triton's counters have no _total
    found = families(text)
    assert {name: f.type for name, f in found.items()} == {
        "nv_inference_request_success": "counter", "nv_inference_request_failure": "counter",
        "nv_inference_request_summary_us": "summary"}

    def success(family) -> dict[str, float]:
        return {s.labels["version"]: s.value for s in family.samples if s.labels["model"] == "churn"}

    was, now = success(before["nv_inference_request_success"]), success(found["nv_inference_request_success"])
    assert set(now) == {"1", "2"} and set(was) == {"1", "2"}  # from load on, as in Triton
    assert (now["2"] - was["2"], now["1"] - was["1"]) == (3, 1)
    failures = found["nv_inference_request_failure"].samples
    assert {(s.labels["version"], s.labels["reason"]) for s in failures} == {(v, r) for v in "12" for r in REASONS}
    assert all(set(s.labels) == {"model", "reason", "version"} for s in failures)
    summary = found["nv_inference_request_summary_us"].samples
    quantiles = {s.labels["quantile"]: s.value for s in summary if s.name.endswith("_us") and s.labels["version"] == "2"}
    assert set(quantiles) == QUANTILES and all(v >= 1 for v in quantiles.values())  # whole microseconds
    counts = {s.labels["version"]: s.value for s in summary if s.name.endswith("_count")}
    assert counts == now


def test_failures_by_reason_and_the_latency_window(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(triton_metrics.time, "monotonic", lambda: clock[0])
    metrics = ServingMetrics(triton={"churn-registered": "churn"})
    metrics.loaded("churn-registered", ["1"])
    metrics.request("churn-registered", "1", 500, 0.002)  # the model failed
    metrics.request("churn-registered", "1", 499, 0.002)  # the client went away
    metrics.request("churn-registered", "", 400, 0.001)  # no version chosen: not Triton's to count
    for ms in range(1, 101):
        metrics.request("churn-registered", "1", 200, ms / 1000)
    found = families(metrics.exposition().decode())
    failed = {s.labels["reason"]: s.value for s in found["nv_inference_request_failure"].samples}
    assert failed == {"REJECTED": 0, "CANCELED": 1, "BACKEND": 1, "OTHER": 0}
    summary = {(s.name, s.labels.get("quantile")): s.value for s in found["nv_inference_request_summary_us"].samples}
    assert {s.labels["model"] for s in found["nv_inference_request_success"].samples} == {"churn"}  # the repository name
    assert summary[("nv_inference_request_summary_us", "0.5")] == 50_000
    assert summary[("nv_inference_request_summary_us", "0.99")] == 99_000
    assert summary[("nv_inference_request_summary_us_count", None)] == 100
    assert summary[("nv_inference_request_summary_us_sum", None)] == sum(range(1, 101)) * 1000

    clock[0] += triton_metrics.MAX_AGE_S + 1  # the window moved past every request: NaN, the totals stay
    found = families(metrics.exposition().decode())
    samples = found["nv_inference_request_summary_us"].samples
    assert all(math.isnan(s.value) for s in samples if "quantile" in s.labels)
    assert [s.value for s in samples if s.name.endswith("_count")] == [100]


def test_without_triton_no_triton_series():
    metrics = ServingMetrics()
    metrics.loaded("churn", ["1"])
    metrics.request("churn", "1", 200, 0.01)
    assert "nv_inference" not in metrics.exposition().decode()
