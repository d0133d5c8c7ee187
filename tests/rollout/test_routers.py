"""The rollout routers on their own: traffic splits within binomial bounds, header
overrides, shadow mirroring and agreement, Thompson sampling convergence and floor."""

from __future__ import annotations

import math

import numpy as np
import pytest

from framework.runtime.serving.routers import (
    BanditRouter, BlueGreenRouter, CanaryRouter, DirectRouter, ShadowRouter, make_router,
)
from framework.runtime.serving.stats import RESERVOIR
from framework.runtime.serving.router import Router
from tests.rollout.conftest import load

ROUTES = 2000


def within_binomial(count: int, n: int, p: float, sigmas: float = 4.5) -> bool:
    return abs(count - n * p) <= sigmas * math.sqrt(n * p * (1 - p)) + 1


@pytest.mark.parametrize("router", [
    DirectRouter("churn", "1"), CanaryRouter("churn", "1", "2"), ShadowRouter("churn", "1", "2"),
    BanditRouter("churn", "1", "2"), BlueGreenRouter("churn", "1", "2"),
])
def test_every_router_is_a_router(router):
    assert isinstance(router, Router)
    assert router.weights("other") == {}
    assert abs(sum(router.weights("churn").values()) - 1.0) < 1e-9


@pytest.mark.parametrize("weight", [10, 25, 50])
def test_canary_split_is_the_weight_within_binomial_bounds(weight):
    router = CanaryRouter("churn", "1", "2", seed=7)
    router.set_weight(weight)
    routes = [router.route("churn", {}) for _ in range(ROUTES)]
    to_candidate = sum(primary == "2" for primary, _ in routes)
    assert within_binomial(to_candidate, ROUTES, weight / 100), to_candidate
    assert all(shadow is None for _, shadow in routes)
    assert router.weights("churn") == {"1": 1 - weight / 100, "2": weight / 100}
    assert router.routed == ROUTES


def test_canary_weights_zero_and_hundred_are_exact():
    router = CanaryRouter("churn", "1", "2", weight=0)
    assert {router.route("churn", {})[0] for _ in range(500)} == {"1"}
    router.set_weight(100)
    assert {router.route("churn", {})[0] for _ in range(500)} == {"2"}
    with pytest.raises(ValueError, match="0..100"):
        router.set_weight(101)


def test_canary_header_override_forces_the_candidate():
    recipe = load()  # header x-mlops-candidate: "true"
    router = make_router(recipe.rollout, "churn", "1", "2")
    assert isinstance(router, CanaryRouter) and router.weight == 0
    assert {router.route("churn", {"x-mlops-candidate": "true"})[0] for _ in range(200)} == {"2"}
    assert {router.route("churn", {"x-mlops-candidate": "false"})[0] for _ in range(200)} == {"1"}
    assert {router.route("churn", {})[0] for _ in range(200)} == {"1"}
    # header names arrive lower-case from the app; the recipe's may have capitals
    mixed = CanaryRouter("churn", "1", "2", header=("X-Canary", "yes"))
    assert mixed.route("churn", {"x-canary": "yes"})[0] == "2"


def test_canary_routes_are_reproducible_for_a_seed():
    one, two = (CanaryRouter("churn", "1", "2", weight=30, seed=3) for _ in range(2))
    assert [one.route("churn", {}) for _ in range(300)] == [two.route("churn", {}) for _ in range(300)]


def test_shadow_mirrors_its_share_and_the_champion_always_answers():
    router = ShadowRouter("churn", "1", "2", mirror_percent=30, seed=1)
    routes = [router.route("churn", {}) for _ in range(ROUTES)]
    assert {primary for primary, _ in routes} == {"1"}
    mirrored = sum(shadow == "2" for _, shadow in routes)
    assert within_binomial(mirrored, ROUTES, 0.3), mirrored
    assert router.pending() == ROUTES + mirrored  # nothing answered yet
    assert router.weights("churn") == {"1": 1.0, "2": 0.0}
    full = ShadowRouter("churn", "1", "2", mirror_percent=100)
    assert all(full.route("churn", {}) == ("1", "2") for _ in range(100))


def test_shadow_collects_agreement_and_latency_delta():
    router = ShadowRouter("churn", "1", "2", mirror_percent=100)
    for i in range(200):
        router.route("churn", {})
        router.observe("churn", "1", True, 0.004)
        if i % 50 == 49:  # 4 shadow runs fail
            router.observe("churn", "2", False, 0.01)
        else:
            router.compare("churn", "1", "2", i % 10 != 0, 0.006)  # 20 of 196 disagree
    assert router.pending() == 0
    champion, candidate = router.stats("1"), router.stats("2")
    assert (champion.requests, champion.errors) == (200, 0)
    assert (candidate.requests, candidate.errors, candidate.compared, candidate.agreed) == (200, 4, 196, 176)
    assert candidate.agreement == pytest.approx(176 / 196)
    assert candidate.delta_p50_ms == pytest.approx(6.0)
    assert candidate.p50_ms == pytest.approx(10.0)  # primary's 4 ms + the 6 ms delta
    assert champion.p99_ms == pytest.approx(4.0)


def simulate_bandit(router, rates, rounds, seed=11):
    rng = np.random.default_rng(seed)
    routes = []
    for _ in range(rounds):
        version, shadow = router.route("churn", {})
        assert shadow is None
        routes.append(version)
        router.observe("churn", version, bool(rng.random() < rates[version]), 0.001)
    return routes


def test_bandit_converges_to_the_better_arm():
    router = BanditRouter("churn", "1", "2", min_percent=5, seed=5)
    routes = simulate_bandit(router, {"1": 0.6, "2": 0.9}, 2000)
    late = routes[-500:]
    assert late.count("2") / len(late) > 0.85
    assert router.prob_best(20000)["2"] > 0.99
    weights = router.weights("churn")
    assert weights["2"] > 0.9 and weights["1"] >= 0.05 - 1e-9
    assert sum(weights.values()) == pytest.approx(1.0)
    assert router.stats("1").requests + router.stats("2").requests == 2000


def test_bandit_keeps_the_min_percent_floor():
    router = BanditRouter("churn", "1", "2", min_percent=5, seed=2)
    routes = simulate_bandit(router, {"1": 0.0, "2": 1.0}, 4000)
    late = routes[-2000:]
    assert within_binomial(late.count("1"), 2000, 0.05), late.count("1")
    assert router.weights("churn")["1"] == pytest.approx(0.05, abs=2e-3)
    greedy = BanditRouter("churn", "1", "2", min_percent=0, seed=2)
    late = simulate_bandit(greedy, {"1": 0.0, "2": 1.0}, 4000)[-2000:]
    assert late.count("1") < 10


def test_bandit_feedback_reward_ignores_errors_and_uses_feedback():
    router = BanditRouter("churn", "1", "2", reward="feedback", min_percent=0, seed=1)
    for _ in range(300):
        router.observe("churn", "2", False, 0.001)  # counted for the analysis, not as reward
        router.feedback("2", 1.0)
        router.feedback("1", 0.0)
    assert router.stats("2").errors == 300
    assert router.prob_best()["2"] == 1.0
    with pytest.raises(ValueError, match="reward"):
        BanditRouter("churn", "1", "2", reward="clicks")


def test_the_decision_reads_the_posterior_not_the_router_history():
    """Equal counts give an equal P, however often the app asked for weights before."""
    a, b = BanditRouter("churn", "1", "2", seed=4), BanditRouter("churn", "1", "2", seed=4)
    for router in (a, b):
        for version, n in (("1", 182), ("2", 100)):
            for _ in range(n):
                router.observe("churn", version, True, 0.001)
    assert a.rewards() == {"1": (182.0, 0.0), "2": (100.0, 0.0)}
    for _ in range(7):
        a.weights("churn")
    assert a.prob_best(200_000, fresh=True) == b.prob_best(200_000, fresh=True)
    assert a.prob_best(200_000, fresh=True)["2"] == pytest.approx(101 / 284, abs=0.004)  # Beta(101, 1) vs Beta(183, 1)


def test_blue_green_serves_the_champion_until_the_switch():
    router = make_router(load("rollout=blue_green").rollout, "churn", "1", "2")
    assert isinstance(router, BlueGreenRouter)
    assert {router.route("churn", {})[0] for _ in range(100)} == {"1"}
    assert router.route("churn", {"x-mlops-candidate": "true"}) == ("2", None)  # the preview
    assert router.weights("churn") == {"1": 1.0, "2": 0.0}
    router.switch()
    assert {router.route("churn", {})[0] for _ in range(100)} == {"2"}
    assert router.weights("churn") == {"1": 0.0, "2": 1.0}


def test_finish_sends_everything_to_the_decided_version():
    for router in (CanaryRouter("churn", "1", "2", weight=50), ShadowRouter("churn", "1", "2"),
                   BanditRouter("churn", "1", "2"), BlueGreenRouter("churn", "1", "2")):
        router.finish("2")
        assert {router.route("churn", {"x-mlops-candidate": "true"}) for _ in range(50)} == {("2", None)}
        assert router.weights("churn") == {"1": 0.0, "2": 1.0}


def test_direct_router_and_reset_windows():
    router = DirectRouter.newest("churn", ["1", "10", "2"])
    assert router.route("churn", {}) == ("10", None) and router.weights("churn") == {"10": 1.0}
    for _ in range(3 * RESERVOIR):
        router.observe("churn", "10", True, 0.001)
    router.observe("churn", "10", False, 0.5)
    stats = router.stats("10")
    assert (stats.requests, stats.errors) == (3 * RESERVOIR + 1, 1)
    assert len(router._stats["10"].latency.samples) == RESERVOIR  # bounded
    assert stats.p99_ms == pytest.approx(1.0)
    router.reset()
    assert router.stats("10").requests == 0 and router.stats("10").p99_ms is None
