"""Local rollouts end to end: the embedded server with the rollout's router, synthetic
KServe v2 traffic from churn's validation rows, the controller, the MLflow registry."""

from __future__ import annotations

import json
import math
import threading
import time

import numpy as np
import pytest

from framework.runtime.rollout import state as st
from framework.runtime.rollout.local import rollout_local, validation_features
from framework.runtime.serving.routers import CanaryRouter
from framework.runtime.rollout.traffic import send_infer_requests
from framework.runtime.serving.host import EmbeddedServer, build_app
from tests.conftest import REPO
from tests.rollout.conftest import load, register, set_aliases


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def features(churn_recipe):
    x = validation_features(churn_recipe, REPO)  # the raw request tensors of the validation rows
    assert list(x) == list(churn_recipe.data.features)
    assert all(values.shape == (1000, 1) for values in x.values())
    assert x["tenure_months"].dtype == np.float32 and x["contract"].dtype == object
    return x


def test_synthetic_traffic_through_a_canary_router(model_repo, churn_recipe, features, tmp_path):
    router = CanaryRouter("churn", "1", "2", weight=25, header=churn_recipe.rollout.header, seed=3)
    app = build_app(churn_recipe, model_repo, tmp_path, router=router, log_sample_rate=0)
    with EmbeddedServer(app) as server:
        report = send_infer_requests(server.url, "churn", features, 1000, concurrency=4)
        forced = send_infer_requests(server.url, "churn", features, 50, headers={"x-mlops-candidate": "true"})
        wait = time.monotonic() + 5
        while router.pending() and time.monotonic() < wait:
            time.sleep(0.01)
    assert (report.sent, report.ok, report.failed, report.rejected) == (1000, 1000, 0, 0)
    assert abs(report.versions["2"] - 250) <= 4.5 * math.sqrt(1000 * 0.25 * 0.75)
    assert forced.versions == {"2": 50}
    assert router.stats("1").requests + router.stats("2").requests == 1050 and router.pending() == 0


def test_canary_rollout_on_the_embedded_server_promotes(tmp_path, model_files, features):
    recipe = load("rollout.analysis.min_requests=50", "rollout.analysis.max_latency_p99_ms=1000")
    state = tmp_path / ".mlops"
    uri, _ = register(recipe, state, [model_files["1"], model_files["2"]])
    set_aliases(recipe, uri, "1", "2")
    result = rollout_local(recipe, state, features=features, concurrency=4)
    assert result.decision == "promoted", result.reasons
    assert st.aliases("churn", uri=uri) == {"champion": "2", "candidate": "2", "rejected": None}
    record = json.loads(st.state_path(state, "churn", "dev").read_text())
    assert record["status"] == "promoted" and [v["weight"] for v in record["verdicts"]] == [10.0, 25.0, 50.0, 100.0]
    for verdict in record["verdicts"]:
        candidate, champion = verdict["candidate"]["requests"], verdict["champion"]["requests"]
        assert candidate >= 50 and verdict["candidate"]["errors"] == 0
        total, share = candidate + champion, verdict["weight"] / 100
        if share < 1:
            assert abs(candidate - total * share) <= 4.5 * math.sqrt(total * share * (1 - share)) + 1
        else:
            assert champion == 0
    # the server served exactly the two versions, fetched from the registry
    repo = state / "rollouts" / "churn" / "dev" / "model_repository" / "churn"
    assert sorted(p.name for p in repo.iterdir()) == ["1", "2", "config.pbtxt"]
    assert "specific" in (repo / "config.pbtxt").read_text()


class Held:
    """A runner whose batches wait until `release` is set (in the batcher's worker threads)."""

    def __init__(self, runner, release):
        self.runner, self.release, self.columns = runner, release, runner.columns

    def run(self, inputs):
        self.release.wait(60)  # bounded: were the answers to wait on it, the test fails instead of hanging
        return self.runner.run(inputs)


class ReleaseAfter:
    """The champion's runner: once the router has counted `answers` champion answers
    (`observe` comes after the response went out), it notes how many shadows had been
    compared by then and sets `release`."""

    def __init__(self, runner, router, answers, release):
        self.runner, self.router, self.answers, self.release = runner, router, answers, release
        self.columns = runner.columns
        self.seen: tuple[int, int] | None = None

    def run(self, inputs):
        if self.seen is None and self.router.stats("1").requests >= self.answers:
            self.seen = (self.router.stats("1").requests, self.router.stats("2").compared)
            self.release.set()
        return self.runner.run(inputs)


def test_shadow_rollout_answers_while_the_candidate_is_still_running(tmp_path, model_files, features):
    recipe = load("rollout=shadow", "rollout.analysis.min_requests=100")
    state = tmp_path / ".mlops"
    uri, _ = register(recipe, state, [model_files["1"], model_files["same"]])  # same weights: they agree
    set_aliases(recipe, uri, "1", "2")
    release = threading.Event()
    watches = []

    def hold_the_candidate(app):
        candidate, champion = app.batchers[("churn", "2")], app.batchers[("churn", "1")]
        candidate.runner, candidate.inline = Held(candidate.runner, release), False  # inline would hold the loop
        champion.runner = ReleaseAfter(champion.runner, app.router, 20, release)
        watches.append(champion.runner)

    result = rollout_local(recipe, state, features=features, concurrency=2, on_app=hold_the_candidate)
    assert watches[0].seen is not None, "the champion never answered 20 requests while the shadows were held"
    answered, compared = watches[0].seen
    assert answered >= 20 and compared == 0  # the answers went out, every shadow still waiting...
    assert result.decision == "promoted", result.reasons
    (verdict,) = result.verdicts
    candidate = verdict["candidate"]
    assert candidate["compared"] >= 100 and candidate["agreement"] == 1.0  # ...and each then ran and was compared
    assert result.reasons[-1].startswith("shadow: agreement 100.00% (")
    assert st.aliases("churn", uri=uri)["champion"] == "2"


def test_rollout_repository_for_a_ray_serve_recipe(tmp_path, model_files):
    """No config.pbtxt (the app derives it from the recipe); files from apply's model
    repository when there (hard-linked), else from the registry."""
    from framework.runtime.rollout.local import rollout_repository

    recipe = load("serving=ray_serve")
    state = tmp_path / ".mlops"
    uri, _ = register(recipe, state, [model_files["1"], model_files["2"]])
    local = state / "model_repository" / "churn" / "1" / "model.onnx"
    local.parent.mkdir(parents=True)
    local.write_bytes(model_files["1"].read_bytes())
    root = rollout_repository(recipe, state, "churn", ["1", "2"])
    model_dir = root / "churn"
    assert sorted(p.name for p in model_dir.iterdir()) == ["1", "2"]
    assert (model_dir / "1" / "model.onnx").stat().st_ino == local.stat().st_ino
    assert (model_dir / "2" / "model.onnx").read_bytes() == model_files["2"].read_bytes()
    app = build_app(recipe, root, state, log_sample_rate=0)
    assert app.repository.versions() == {"churn": ["1", "2"]}


def test_a_rollout_repository_serves_exactly_its_versions_whatever_the_policy(tmp_path, model_files):
    """`mlops serve` mid-rollout of a recipe serving the newest version only: the app loads
    the champion and the candidate the rollout repository holds (the live plan's versions)."""
    from framework.runtime.rollout.local import rollout_repository
    from framework.runtime.serving.live import LivePlan, live_router

    recipe = load("serving.version_policy.latest=1")
    state = tmp_path / ".mlops"
    for version in ("1", "2"):
        local = state / "model_repository" / "churn" / version / "model.onnx"
        local.parent.mkdir(parents=True)
        local.write_bytes(model_files[version].read_bytes())
    root = rollout_repository(recipe, state, "churn", ["2", "1"], purpose="serve")
    assert "specific { versions: [ 1, 2 ] }" in (root / "churn" / "config.pbtxt").read_text()  # Triton's layout too
    plan = LivePlan("churn", "1", "2", "canary", 10.0)
    app = build_app(recipe, root, state, router=live_router(recipe, plan), versions=plan.versions, log_sample_rate=0)
    assert app.repository.versions() == {"churn": ["1", "2"]}
    assert build_app(recipe, root, state, versions=["1"], log_sample_rate=0).repository.versions() == {"churn": ["1"]}
    assert build_app(recipe, root, state, log_sample_rate=0).repository.versions() == {"churn": ["2"]}  # the recipe's policy


def constant_model(recipe, path, predicted: int):
    """A classifier that always answers class `predicted` (its last layer is a bias)."""
    import torch

    from framework.runtime.training.export import export_onnx
    from framework.runtime.training.model import TabularNet
    from tests.serving.conftest import churn_pipeline

    pipeline = churn_pipeline()
    net = TabularNet(width=pipeline.width, outputs=2, task="classification", hidden_sizes=[4])
    with torch.no_grad():
        last = net.body[-1]
        last.weight.zero_()
        last.bias.copy_(torch.tensor([4.0, -4.0] if predicted == 0 else [-4.0, 4.0]))
    path.parent.mkdir(parents=True, exist_ok=True)
    return export_onnx(net, recipe, pipeline, path)


@pytest.mark.parametrize("candidate_is_better", [True, False], ids=["better-candidate", "worse-candidate"])
def test_bandit_on_feedback_learns_which_version_answers_right(tmp_path, churn_recipe, candidate_is_better):
    """The synthetic clients score each answer against its row's label and post the
    reward to the feedback route: the bandit finds the version that is right more often."""
    from framework.runtime.rollout.local import validation_rows

    x, y = validation_rows(churn_recipe, REPO)
    majority = int(np.bincount(y).argmax())
    assert np.mean(y == majority) > 0.6  # the always-majority model is right far more often
    good = constant_model(churn_recipe, tmp_path / "good" / "model.onnx", majority)
    bad = constant_model(churn_recipe, tmp_path / "bad" / "model.onnx", 1 - majority)
    recipe = load("rollout=bandit", "rollout.reward=feedback", "rollout.analysis.min_requests=100",
                  "rollout.analysis.max_latency_p99_ms=1000")
    state = tmp_path / ".mlops"
    uri, _ = register(recipe, state, [bad, good] if candidate_is_better else [good, bad])
    set_aliases(recipe, uri, "1", "2")
    result = rollout_local(recipe, state, root=REPO, concurrency=4)
    if candidate_is_better:
        assert result.decision == "promoted", result.reasons
        assert result.reasons[0].startswith("bandit: P(version 2 beats version 1) = ")
        assert result.reasons[0].endswith(" >= 90.0% (rollout.promote_probability)")
        assert st.aliases("churn", uri=uri)["champion"] == "2"
    else:
        assert result.decision == "rolled_back", result.reasons
        assert result.reasons[0].startswith("bandit: P(version 2 beats version 1) = ")
        assert result.reasons[0].endswith(" <= 10.0% (1 - rollout.promote_probability)")
        assert st.aliases("churn", uri=uri) == {"champion": "1", "candidate": "2", "rejected": "2"}
