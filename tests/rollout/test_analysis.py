"""Verdicts of the rollout analysis, with their reasons pinned."""

from __future__ import annotations

from framework.recipe.rollout import Analysis
import pytest

from framework.runtime.rollout.analysis import Verdict, analyse, bandit_verdict
from framework.runtime.serving.stats import Stats

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


INCONCLUSIVE = ("inconclusive: P(version 2 beats version 1) = {p}, needs >= 90.0% to promote or <= 10.0% to roll back; "
                "the champion stays")


@pytest.mark.parametrize(("p", "passed", "line"), [
    (0.97, True, "P(version 2 beats version 1) = 97.0% >= 90.0% (rollout.promote_probability)"),
    (0.9, True, "P(version 2 beats version 1) = 90.0% >= 90.0% (rollout.promote_probability)"),
    (0.1, False, "P(version 2 beats version 1) = 10.0% <= 10.0% (1 - rollout.promote_probability)"),
    (0.02, False, "P(version 2 beats version 1) = 2.0% <= 10.0% (1 - rollout.promote_probability)"),
    (0.355, None, INCONCLUSIVE.format(p="35.5%")),  # the user's case: never a promotion
    (0.75, None, INCONCLUSIVE.format(p="75.0%")),
    (0.89996, None, INCONCLUSIVE.format(p="89.996%")),  # never printed as the threshold it missed
])
def test_the_bandit_promotes_rolls_back_or_keeps_the_champion_by_the_posterior(p, passed, line):
    assert bandit_verdict(p, 0.9, "1", "2") == Verdict(passed, [line])


def test_promote_probability_sets_both_thresholds():
    assert bandit_verdict(0.97, 0.99, "1", "2") == Verdict(None, [
        "inconclusive: P(version 2 beats version 1) = 97.0%, needs >= 99.0% to promote or <= 1.0% to roll back; "
        "the champion stays"
    ])
    assert bandit_verdict(0.04, 0.95, "3", "4").reasons == [
        "P(version 4 beats version 3) = 4.0% <= 5.0% (1 - rollout.promote_probability)"
    ]


def test_rewards_that_never_vary_cannot_rank_the_versions():
    """reward: success and no request failed on either version: Beta(183, 1) against
    Beta(101, 1) gives P = 101/284 = 35.6% from the traffic split alone (the user's case),
    and a larger split would reach 90% as easily: neither promotes nor rolls back."""
    same = {"1": (182.0, 0.0), "2": (100.0, 0.0)}
    assert bandit_verdict(0.356, 0.9, "1", "2", same) == Verdict(None, [
        "inconclusive: every request on both versions got reward 1 (182 on version 1, 100 on version 2), so "
        "P(version 2 beats version 1) = 35.6% reflects only how the bandit split the traffic; the champion stays"
    ])
    assert bandit_verdict(0.95, 0.9, "1", "2", {"1": (100.0, 0.0), "2": (1900.0, 0.0)}).passed is None
    assert bandit_verdict(0.5, 0.9, "1", "2", {"1": (0.0, 0.0), "2": (0.0, 0.0)}).reasons == [
        "inconclusive: no reward reached the bandit (reward: feedback counts only what the feedback route "
        "receives); the champion stays"
    ]
    # one failure is evidence: the posterior decides again
    assert bandit_verdict(0.95, 0.9, "1", "2", {"1": (99.0, 1.0), "2": (1900.0, 0.0)}).passed is True
