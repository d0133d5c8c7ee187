"""Verdicts of the rollout analysis, with their reasons pinned."""

from __future__ import annotations

from framework.recipe.rollout import Analysis
from framework.runtime.rollout.analysis import Verdict, analyse
from framework.runtime.rollout.stats import Stats

ANALYSIS = Analysis(max_error_rate=0.01, max_latency_p99_ms=100, min_requests=200)


def test_not_enough_requests_is_no_verdict_yet():
    assert analyse(Stats("2", requests=57, errors=50, p99_ms=900.0), ANALYSIS) == Verdict(
        None, ["not enough requests: 57 of 200 (analysis.min_requests)"]
    )


def test_a_healthy_candidate_passes_with_the_checks_it_passed():
    assert analyse(Stats("2", requests=200, errors=2, p99_ms=12.34), ANALYSIS) == Verdict(True, [
        "error rate 1.00% (2 of 200) <= 1.00%",
        "p99 latency 12.3 ms <= 100 ms",
    ])


def test_errors_fail():
    assert analyse(Stats("2", requests=400, errors=12, p99_ms=5.0), ANALYSIS) == Verdict(False, [
        "error rate 3.00% (12 of 400) > 1.00% (analysis.max_error_rate)",
    ])


def test_latency_fails_and_every_failed_check_is_named():
    assert analyse(Stats("2", requests=250, errors=25, p99_ms=312.46), ANALYSIS) == Verdict(False, [
        "error rate 10.00% (25 of 250) > 1.00% (analysis.max_error_rate)",
        "p99 latency 312.5 ms > 100 ms (analysis.max_latency_p99_ms)",
    ])


def test_shadow_agreement():
    stats = Stats("2", requests=200, errors=0, p99_ms=8.0, compared=200, agreed=180)
    assert analyse(stats, ANALYSIS, min_agreement=0.95) == Verdict(False, [
        "agreement 90.00% (180 of 200) < 95.00% (min_agreement)",
    ])
    assert analyse(stats, ANALYSIS, min_agreement=0.9) == Verdict(True, [
        "error rate 0.00% (0 of 200) <= 1.00%",
        "p99 latency 8.0 ms <= 100 ms",
        "agreement 90.00% (180 of 200) >= 90.00%",
    ])
    failed_all = Stats("2", requests=200, errors=200, p99_ms=3.0)
    assert analyse(failed_all, ANALYSIS, min_agreement=0.5).reasons == [
        "error rate 100.00% (200 of 200) > 1.00% (analysis.max_error_rate)",
        "agreement unknown: no mirrored request was answered by both models (min_agreement)",
    ]
