"""`mlops rollout status|promote|rollback` on a project copy with its own registry."""

from __future__ import annotations

import re

import pytest

from framework.runtime.rollout import state as st
from framework.runtime.rollout.controller import Controller
from framework.runtime.serving.routers import make_router
from tests.conftest import run_cli
from tests.rollout.conftest import FakeTraffic, load, register, set_aliases

TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def out(result) -> str:
    return TIME.sub("<time>", result.stdout)


@pytest.fixture
def registered(project, churn_recipe, model_files):
    uri, versions = register(churn_recipe, project / ".mlops", [model_files["1"], model_files["2"]])
    set_aliases(churn_recipe, uri, "1", "2")
    return project / ".mlops", uri


def test_without_a_registry_status_says_none_and_promote_fails(project):
    result = run_cli("rollout", "status", "churn")
    assert result.exit_code == 0, result.stderr
    assert out(result) == (
        "churn (dev): registered model 'churn'\n"
        "  champion:  none\n"
        "  candidate: none\n"
        "  rejected:  none\n"
        "  rollout:   none recorded\n"
    )
    assert not (project / ".mlops" / "mlflow.db").exists()  # status creates no store
    for action, verb in (("promote", "promote"), ("rollback", "roll back")):
        result = run_cli("rollout", action, "churn")
        assert result.exit_code == 1 and result.stdout == ""
        uri = f"sqlite:///{project / '.mlops' / 'mlflow.db'}"
        assert result.stderr == (
            f"rollout: nothing to {verb}: no version of 'churn' has alias candidate in {uri}; run `mlops apply churn` first\n"
        )


def test_promote_by_hand(registered):
    state, uri = registered
    result = run_cli("rollout", "status", "churn")
    assert out(result) == (
        "churn (dev): registered model 'churn'\n"
        "  champion:  version 1\n"
        "  candidate: version 2\n"
        "  rejected:  none\n"
        "  rollout:   none recorded\n"
    )
    result = run_cli("rollout", "promote", "churn")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "churn (dev): promoted version 2 to champion (was version 1)\n"
    assert st.aliases("churn", uri=uri) == {"champion": "2", "candidate": "2", "rejected": None}
    assert out(run_cli("rollout", "status", "churn", "--env", "dev")) == (
        "churn (dev): registered model 'churn'\n"
        "  champion:  version 2\n"
        "  candidate: version 2\n"
        "  rejected:  none\n"
        "  rollout:   canary, step 0 of 4, candidate weight 100%, promoted\n"
        "  verdict:   none\n"
        "  decision:  promote by mlops rollout promote at <time>\n"
    )
    result = run_cli("rollout", "promote", "churn")
    assert result.exit_code == 1
    assert result.stderr == "rollout: nothing to promote: the candidate, version 2 of 'churn', is already the champion\n"


def test_status_after_a_rolled_back_canary_then_rollback_and_promote_by_hand(registered, churn_recipe):
    state, uri = registered
    recipe = load("rollout.analysis.min_requests=50")
    router = make_router(recipe.rollout, "churn", "1", "2", seed=1)
    Controller(recipe, uri=uri, router=router, traffic=FakeTraffic(router, errors={"2": 0.3}), champion="1",
               candidate="2", state_path=st.state_path(state, "churn", "dev")).run()
    result = run_cli("rollout", "status", "churn")
    assert result.exit_code == 0, result.stderr
    assert out(result) == (
        "churn (dev): registered model 'churn'\n"
        "  champion:  version 1\n"
        "  candidate: version 2\n"
        "  rejected:  version 2\n"
        "  rollout:   canary, step 1 of 4, candidate weight 0%, rolled_back\n"
        "  verdict:   step 1 failed: error rate 23.53% (12 of 51) > 1.00% (analysis.max_error_rate)\n"
        "  decision:  rollback by controller at <time>\n"
    )
    set_aliases(churn_recipe, uri, "1", "2")
    result = run_cli("rollout", "rollback", "churn")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "churn (dev): rolled back version 2 (alias rejected); champion stays version 1\n"
    assert st.aliases("churn", uri=uri) == {"champion": "1", "candidate": "2", "rejected": "2"}
    record = st.read_state(st.state_path(state, "churn", "dev"))
    assert (record["decision"], record["decided_by"], len(record["verdicts"])) == ("rollback", "mlops rollout rollback", 1)
    # a person may still promote the rejected candidate: that clears `rejected`
    result = run_cli("rollout", "promote", "churn")
    assert result.exit_code == 0, result.stderr
    assert st.aliases("churn", uri=uri) == {"champion": "2", "candidate": "2", "rejected": None}
    result = run_cli("rollout", "rollback", "churn")
    assert result.exit_code == 1
    assert result.stderr == "rollout: nothing to roll back: the candidate, version 2 of 'churn', is already the champion\n"


def test_status_after_an_inconclusive_bandit_then_promote_by_hand(registered):
    """Inconclusive: no alias moved, the record says so, and the candidate is still there
    for a person to decide."""
    state, uri = registered
    recipe = load("rollout=bandit", "rollout.analysis.min_requests=100", "rollout.analysis.max_error_rate=0.5")
    router = make_router(recipe.rollout, "churn", "1", "2", seed=1)
    result = Controller(recipe, uri=uri, router=router, traffic=FakeTraffic(router, errors={"1": 0.1, "2": 0.12}),
                        champion="1", candidate="2", state_path=st.state_path(state, "churn", "dev")).run()
    assert result.decision == "inconclusive"
    p = result.reasons[0].split(" = ")[1].split(",")[0]
    status = run_cli("rollout", "status", "churn")
    assert status.exit_code == 0, status.stderr
    assert re.sub(r"error rate .*", "<checks>", out(status)) == (
        "churn (dev): registered model 'churn'\n"
        "  champion:  version 1\n"
        "  candidate: version 2\n"
        "  rejected:  none\n"
        "  rollout:   bandit, candidate weight 0%, inconclusive\n"
        f"  verdict:   step 1 inconclusive: P(version 2 beats version 1) = {p}, needs >= 90.0% to promote or <= 10.0% "
        "to roll back; the champion stays; <checks>\n"
        "  decision:  inconclusive by controller at <time>\n"
        "             the champion stays; `mlops rollout promote|rollback` decides by hand\n"
    )
    result = run_cli("rollout", "promote", "churn")
    assert result.exit_code == 0, result.stderr
    assert st.aliases("churn", uri=uri) == {"champion": "2", "candidate": "2", "rejected": None}


@pytest.mark.parametrize(("value", "line"), [
    ("1", "<override>: rollout.promote_probability: must be less than 1, got 1"),
    ("0.5", "<override>: rollout.promote_probability: must be greater than 0.5, got 0.5"),
])
def test_promote_probability_lies_strictly_between_a_coin_toss_and_certainty(project, value, line):
    assert run_cli("validate", "churn", "rollout=bandit", "rollout.promote_probability=0.95").exit_code == 0
    result = run_cli("validate", "churn", "rollout=bandit", f"rollout.promote_probability={value}")
    assert result.exit_code == 1 and result.stderr.endswith(f"{line}\n")


@pytest.mark.parametrize(("decision", "exit_code"), [("inconclusive", 0), ("rolled_back", 1), ("promoted", 0)])
def test_apply_exits_1_only_when_the_rollout_rolled_back(monkeypatch, tmp_path, decision, exit_code):
    """An inconclusive bandit is a decision (the champion stays), not a failure for CI."""
    from types import SimpleNamespace

    from framework import api
    from framework.runtime.rollout.controller import RolloutResult

    monkeypatch.delenv("GITHUB_OUTPUT", raising=False)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    reasons = ["bandit: inconclusive: P(version 2 beats version 1) = 35.5%, needs >= 90.0% to promote or <= 10.0% "
               "to roll back; the champion stays"]
    rollout = RolloutResult("churn", "dev", "bandit", "1", "2", decision, reasons, [], 600, None)
    outcome = SimpleNamespace(recipe="churn", environment="dev", model_version="2", aliases=["candidate"], metrics={},
                              run_id="r", tracking_uri="file:x", run_dir=tmp_path, model_repository=None, wandb_run=None)
    monkeypatch.setattr(api, "apply", lambda *a, **k: api.ApplyResult("churn", "dev", tmp_path, [], outcome, rollout=rollout))
    result = run_cli("apply", "churn")
    assert result.exit_code == exit_code, result.stderr
    assert f"  {reasons[0]}\n" in result.stdout
    if decision == "inconclusive":
        assert ("churn (dev): rollout bandit: inconclusive: champion stays version 1; version 2 keeps alias candidate "
                "(decide by hand: `mlops rollout promote|rollback churn`)\n") in result.stdout
        assert result.stderr == ""


def test_rollout_help_lists_its_commands():
    result = run_cli("rollout", "--help")
    assert result.exit_code == 0
    for command in ("status", "promote", "rollback"):
        assert command in result.stdout
    assert "rollout" in run_cli("--help").stdout
