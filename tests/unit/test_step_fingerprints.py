"""Step fingerprints: each step's hash moves with the keys it reads and everything
upstream, never with keys the job does not read; unknown keys count as read."""

from __future__ import annotations

import pytest

from framework import api
from framework.contracts import fingerprint as fp
from framework.runtime.stepcache.probe import explain
from framework.runtime.stepcache.store import FinishedRun
from tests.conftest import REPO

DATA = {"sha256": "a" * 64}
STEPS = [name for name, _ in fp.STEPS]


@pytest.fixture(scope="module")
def recipe():
    return api.load_recipe("churn", project=REPO).recipe


def _with(recipe, overrides: list[str]):
    return api.load_recipe("churn", overrides=overrides, project=REPO).recipe


def _changed(before: fp.Fingerprints, after: fp.Fingerprints) -> list[str]:
    return [step for step in STEPS if before.steps[step] != after.steps[step]]


@pytest.mark.parametrize(("override", "first"), [
    ("data.split.seed=7", "data"),
    ("training.epochs=3", "train"),
    ("model.hidden_sizes=[8]", "train"),
    ("+tracking.experiment=other", "track"),
    ("evaluation.metrics=[accuracy,roc_auc]", "evaluate"),
    ("serving.format=torchscript", "evaluate"),
    ("evaluation.gates.min_accuracy=0.5", "gates"),
])
def test_a_key_moves_its_step_and_every_later_one(recipe, override, first):
    changed = _changed(fp.fingerprints(recipe, DATA), fp.fingerprints(_with(recipe, [override]), DATA))
    assert changed == STEPS[STEPS.index(first):]


@pytest.mark.parametrize("override", ["deploy.namespace=elsewhere", "serving.max_batch_size=64", "ci.python_version='3.12'",
                                      "rollout.analysis.max_error_rate=0.5", "monitoring.drift.threshold=0.5", "description=x"])
def test_keys_the_job_never_reads_leave_every_fingerprint(recipe, override):
    assert fp.fingerprints(recipe, DATA).steps == fp.fingerprints(_with(recipe, [override]), DATA).steps


def test_other_data_moves_every_step(recipe):
    other = fp.fingerprints(recipe, {"sha256": "b" * 64})
    assert _changed(fp.fingerprints(recipe, DATA), other) == STEPS


def test_a_key_no_step_claims_counts_as_read_by_train():
    assert fp.step_of("model.architecture") == "train"
    assert fp.step_of("some_future_section.value") == fp.CATCH_ALL == "train"
    assert fp.step_of("deploy.image") is None and fp.step_of("serving.format") == "evaluate"


def test_the_code_is_part_of_every_fingerprint(recipe, monkeypatch):
    before = fp.fingerprints(recipe, DATA)
    monkeypatch.setattr(fp, "code_identity", lambda: "c" * 64)
    assert _changed(before, fp.fingerprints(recipe, DATA)) == STEPS


def test_tags_carry_every_step_and_the_job(recipe):
    tags = fp.fingerprints(recipe, DATA).tags()
    assert tags[fp.TAG] == tags["mlops.fingerprint.register"]
    assert "mlops.fingerprint.drift_reference" in tags and tags[fp.CODE_TAG] == fp.code_identity()


def _run(recipe, data=DATA) -> FinishedRun:
    found = fp.fingerprints(recipe, data)
    return FinishedRun("r" * 32, "file:///x", {**found.tags(), "mlops.data.sha256": data["sha256"]}, found.params)


@pytest.mark.parametrize(("overrides", "data", "said"), [
    (["training.epochs=3"], DATA, ("train", "training.epochs changed (10 -> 3)")),
    (["training.epochs=3", "training.batch_size=16", "training.seed=1", "model.hidden_sizes=[8]"], DATA,
     ("train", "model.hidden_sizes changed (64,32 -> 8), training.batch_size changed (128 -> 16), "
               "training.epochs changed (10 -> 3) and 1 more")),
    ([], {"sha256": "b" * 64}, ("data", f"the data changed (sha256 {'a' * 12} -> {'b' * 12})")),
    (["evaluation.gates.min_accuracy=0.5"], DATA, ("gates", "evaluation.gates.min_accuracy changed (0.72 -> 0.5)")),
])
def test_the_first_changed_step_is_named_with_what_changed(recipe, overrides, data, said):
    assert explain(_run(recipe), fp.fingerprints(_with(recipe, overrides), data)) == said


def test_a_code_change_is_named(recipe, monkeypatch):
    last = _run(recipe)
    monkeypatch.setattr(fp, "code_identity", lambda: "c" * 64)
    assert explain(last, fp.fingerprints(recipe, DATA)) == (
        "data", f"the training code or a library changed since run {'r' * 12}")
