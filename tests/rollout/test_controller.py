"""The rollout controller against a real MLflow registry (sqlite in a temporary state
dir) with fake traffic that calls the router as the app would."""

from __future__ import annotations

import json

import pytest

from framework.runtime import tracking
from framework.runtime.rollout import state as st
from framework.runtime.rollout.controller import Controller, summary
from framework.runtime.rollout.local import rollout_local
from framework.runtime.serving.live import live_plan
from framework.runtime.serving.routers import make_router
from tests.rollout.conftest import FakeTraffic, load, register, set_aliases


@pytest.fixture(scope="module")
def registry(tmp_path_factory, churn_recipe, model_files):
    state = tmp_path_factory.mktemp("registry") / ".mlops"
    uri, versions = register(churn_recipe, state, [model_files["1"], model_files["2"]])
    assert versions == ["1", "2"]
    return state, uri


@pytest.fixture
def fresh(registry, churn_recipe):
    state, uri = registry
    set_aliases(churn_recipe, uri, "1", "2")
    path = st.state_path(state, "churn", "dev")
    path.unlink(missing_ok=True)
    return state, uri, path


def run(recipe, fresh, **traffic):
    state, uri, path = fresh
    router = make_router(recipe.rollout, "churn", "1", "2", seed=1)
    fake = FakeTraffic(router, **traffic)
    result = Controller(recipe, uri=uri, router=router, traffic=fake, champion="1", candidate="2", state_path=path).run()
    return result, router, fake, json.loads(path.read_text())


def aliases(uri):
    return st.aliases("churn", uri=uri)


def test_canary_on_healthy_traffic_promotes_and_moves_champion(fresh):
    recipe = load("rollout.analysis.min_requests=50")
    result, router, fake, record = run(recipe, fresh)
    assert result.decision == "promoted" and result.champion_after == "2"
    assert aliases(fresh[1]) == {"champion": "2", "candidate": "2", "rejected": None}
    assert tracking.model_version_tags("churn", "2", uri=fresh[1])["mlops.rollout"] == "promoted"
    assert [v["weight"] for v in record["verdicts"]] == [10.0, 25.0, 50.0, 100.0]
    assert all(v["passed"] and v["candidate"]["requests"] >= 50 for v in record["verdicts"])
    assert record["verdicts"][0]["candidate"]["requests"] < 100  # the 10% step was a window of its own
    assert {k: record[k] for k in ("strategy", "status", "decision", "decided_by", "step", "weight", "champion", "candidate")} == {
        "strategy": "canary", "status": "promoted", "decision": "promote", "decided_by": "controller",
        "step": 4, "weight": 100.0, "champion": "1", "candidate": "2",
    }
    assert record["reasons"] == ["canary: all 4 steps passed"]
    assert record["requests"] == fake.sent and record["finished_at"] and "request counts" in record["advance"]
    assert router.route("churn", {}) == ("2", None)  # the router now sends everything to it


def test_canary_with_injected_errors_rolls_back_and_rejects_the_candidate(fresh):
    recipe = load("rollout.analysis.min_requests=50")
    result, router, fake, record = run(recipe, fresh, errors={"2": 0.3})
    assert result.decision == "rolled_back" and result.champion_after == "1"
    assert aliases(fresh[1]) == {"champion": "1", "candidate": "2", "rejected": "2"}
    assert tracking.model_version_tags("churn", "2", uri=fresh[1])["mlops.rollout"] == "rejected"
    (verdict,) = record["verdicts"]  # the first step failed: nothing later ran
    assert verdict["passed"] is False and verdict["step"] == 1
    assert verdict["reasons"][0].startswith("error rate ") and verdict["reasons"][0].endswith("> 1.00% (analysis.max_error_rate)")
    assert result.reasons == [f"canary step 1/4 (10%): {verdict['reasons'][0]}"]
    assert record["status"] == "rolled_back" and record["weight"] == 0.0
    assert router.route("churn", {"x-mlops-candidate": "true"}) == ("1", None)


def test_canary_latency_regression_rolls_back(fresh):
    recipe = load("rollout.analysis.min_requests=50")
    result, *_ = run(recipe, fresh, latency={"1": 0.002, "2": 0.25})
    assert result.decision == "rolled_back"
    assert result.reasons == ["canary step 1/4 (10%): p99 latency 250.0 ms > 100 ms (analysis.max_latency_p99_ms)"]


def test_a_step_that_gets_no_candidate_traffic_is_inconclusive_and_rolls_back(fresh):
    recipe = load("rollout.analysis.min_requests=50")
    state, uri, path = fresh
    router = make_router(recipe.rollout, "churn", "1", "2")
    result = Controller(recipe, uri=uri, router=router, traffic=lambda n, headers=None: None, champion="1",
                        candidate="2", state_path=path).run()
    assert result.decision == "rolled_back"
    assert result.reasons == ["canary step 1/4 (10%): inconclusive: 0 of 50 requests (analysis.min_requests) after 1520 requests sent"]
    assert aliases(uri)["champion"] == "1"


@pytest.mark.parametrize(("agree", "decision"), [(1.0, "promoted"), (0.8, "rolled_back")])
def test_shadow_decides_on_agreement(fresh, agree, decision):
    recipe = load("rollout=shadow", "rollout.mirror_percent=50", "rollout.analysis.min_requests=100")
    result, router, fake, record = run(recipe, fresh, agree=agree)
    assert result.decision == decision
    assert set(fake.routes) == {"1"}  # the champion answered every request
    (verdict,) = record["verdicts"]
    assert verdict["candidate"]["compared"] >= 100 and verdict["champion"]["requests"] > verdict["candidate"]["requests"]
    if decision == "rolled_back":
        assert result.reasons[0].startswith("shadow: agreement ") and result.reasons[0].endswith("< 95.00% (min_agreement)")
        assert aliases(fresh[1])["rejected"] == "2"
    else:
        assert result.reasons[-1] == f"shadow: agreement 100.00% ({verdict['candidate']['compared']} of {verdict['candidate']['compared']}) >= 95.00%"


BANDIT = ("rollout=bandit", "rollout.analysis.min_requests=100", "rollout.analysis.max_error_rate=0.5")


def test_bandit_promotes_when_the_posterior_is_confident(fresh):
    recipe = load(*BANDIT)
    result, router, fake, record = run(recipe, fresh, errors={"1": 0.3})
    assert result.decision == "promoted" and result.champion_after == "2"
    assert result.reasons[0] == "bandit: P(version 2 beats version 1) = 100.0% >= 90.0% (rollout.promote_probability)"
    assert result.reasons[1].startswith("bandit: error rate 0.00% (0 of ")  # the checks it passed follow
    assert aliases(fresh[1]) == {"champion": "2", "candidate": "2", "rejected": None}
    verdict = record["verdicts"][0]
    assert verdict["passed"] is True and min(verdict["candidate"]["requests"], verdict["champion"]["requests"]) >= 100
    assert (record["status"], record["decision"]) == ("promoted", "promote")


def test_bandit_rolls_back_when_the_posterior_says_worse(fresh):
    recipe = load(*BANDIT)
    result, router, fake, record = run(recipe, fresh, errors={"2": 0.2})
    assert result.decision == "rolled_back"
    assert result.reasons == ["bandit: P(version 2 beats version 1) = 0.0% <= 10.0% (1 - rollout.promote_probability)"]
    assert aliases(fresh[1]) == {"champion": "1", "candidate": "2", "rejected": "2"}


def test_a_failing_health_gate_still_rolls_the_bandit_back(fresh):
    recipe = load("rollout=bandit", "rollout.analysis.min_requests=100")  # max_error_rate 2%
    result, router, fake, record = run(recipe, fresh, errors={"1": 0.4, "2": 0.05})  # the posterior favours 2
    assert result.decision == "rolled_back"
    assert result.reasons[0].startswith("bandit: error rate ") and result.reasons[0].endswith("(analysis.max_error_rate)")
    assert aliases(fresh[1])["rejected"] == "2"


def _inconclusive(recipe, fresh, errors):
    result, router, fake, record = run(recipe, fresh, errors=errors)
    assert result.decision == "inconclusive", result.reasons
    p = router.prob_best(200_000, fresh=True)["2"]  # the very posterior the controller read
    assert aliases(fresh[1]) == {"champion": "1", "candidate": "2", "rejected": None}  # no alias moved
    assert tracking.model_version_tags("churn", "2", uri=fresh[1])["mlops.rollout"] == "inconclusive"
    assert {k: record[k] for k in ("status", "decision", "decided_by", "weight")} == {
        "status": "inconclusive", "decision": "inconclusive", "decided_by": "controller", "weight": 0.0,
    }
    assert record["finished_at"] and record["verdicts"][0]["passed"] is None
    assert router.route("churn", {}) == ("1", None)  # the champion keeps every request
    plan = live_plan(recipe, fresh[0])  # `mlops serve` afterwards: the champion alone, no bandit
    assert (plan.champion, plan.candidate) == ("1", None)
    return result, router, record, p


def test_bandit_between_the_thresholds_is_inconclusive_and_the_champion_stays(fresh):
    recipe = load(*BANDIT)
    result, router, record, p = _inconclusive(recipe, fresh, {"1": 0.1, "2": 0.12})
    assert 0.1 < p < 0.9 and min(f for _, f in router.rewards().values()) > 0  # both versions failed sometimes
    line = (f"bandit: inconclusive: P(version 2 beats version 1) = {p * 100:.1f}%, needs >= 90.0% to promote or "
            f"<= 10.0% to roll back; the champion stays")
    assert result.reasons[0] == line
    assert result.reasons[1].startswith("bandit: error rate ")
    assert record["reasons"] == result.reasons
    assert summary(result).splitlines()[:3] == [
        "churn (dev): rollout bandit: inconclusive: champion stays version 1; version 2 keeps alias candidate "
        "(decide by hand: `mlops rollout promote|rollback churn`)",
        f"  {record['requests']} synthetic requests on the embedded server",
        f"  {line}",
    ]


def test_reward_success_without_failures_is_inconclusive_whatever_the_split(fresh):
    """The user's case: neither version fails, P(version 2 beats version 1) is the traffic
    split (35.5% in the report) and must not promote (nor, at 90%, roll back)."""
    recipe = load(*BANDIT)
    result, router, record, p = _inconclusive(recipe, fresh, {})
    (ok1, failed1), (ok2, failed2) = router.rewards()["1"], router.rewards()["2"]
    assert failed1 == failed2 == 0 and p == pytest.approx((ok2 + 1) / (ok1 + ok2 + 2), abs=0.005)
    assert result.reasons[0] == (
        f"bandit: inconclusive: every request on both versions got reward 1 ({ok1:g} on version 1, {ok2:g} on "
        f"version 2), so P(version 2 beats version 1) = {p * 100:.1f}% reflects only how the bandit split the "
        f"traffic; the champion stays"
    )


def test_blue_green_previews_then_switches_or_waits(fresh, churn_recipe):
    recipe = load("rollout=blue_green", "rollout.analysis.min_requests=50")
    result, router, fake, record = run(recipe, fresh)
    assert result.decision == "promoted" and router.active == "2"
    assert set(fake.routes) == {"2"}  # preview traffic carries the header
    assert aliases(fresh[1])["champion"] == "2"
    set_aliases(churn_recipe, fresh[1], "1", "2")
    manual = load("rollout=blue_green", "rollout.analysis.min_requests=50", "rollout.auto_promote=false")
    result, router, fake, record = run(manual, fresh)
    assert result.decision == "paused" and record["status"] == "paused" and record["decision"] is None
    assert result.reasons[-1] == "auto_promote is false: run `mlops rollout promote` to switch"
    assert aliases(fresh[1])["champion"] == "1" and router.active == "1"


def test_direct_promotes_without_traffic(fresh):
    recipe = load("rollout=direct")
    result, router, fake, record = run(recipe, fresh)
    assert result.decision == "promoted" and fake.sent == 0 and record["verdicts"] == []
    assert aliases(fresh[1])["champion"] == "2"


def test_rollout_local_without_champion_or_with_nothing_to_do(fresh, churn_recipe):
    state, uri, path = fresh
    set_aliases(churn_recipe, uri, None, "2")
    result = rollout_local(churn_recipe, state)
    assert (result.decision, result.reasons) == ("promoted", ["no champion yet: version 2 becomes the champion"])
    assert aliases(uri)["champion"] == "2"
    result = rollout_local(churn_recipe, state)
    assert (result.decision, result.reasons) == ("unchanged", ["version 2 is already the champion"])
    assert json.loads(path.read_text())["status"] == "unchanged"
    set_aliases(churn_recipe, uri, "1", None)
    from framework.errors import MlopsError

    with pytest.raises(MlopsError, match="no version of 'churn' has alias candidate"):
        rollout_local(churn_recipe, state)
