"""MLflow tracking, registry and the apply lock, against a real sqlite store, and the
runs, artifacts and registry against the team's `mlflow server` over HTTP too.

Building an MLflow sqlite schema takes ~2 s, so one state dir (one store) serves the
module: `logged` runs one tracked block and the tests read it back; `tracked` is that
run in each store. Registry tests use their own model names so they depend neither on
each other nor on what else the shared server holds.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from framework import api
from framework.errors import MlopsError
from framework.runtime import tracking
from framework.runtime.locks import apply_lock, lock_path
from tests.conftest import REPO
from tests.mlflow_server import server_overrides, unique_name

# MLflow 3.17's sqlalchemy store configures a loader SQLAlchemy 2.1 deprecates; not ours.
pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")


def _log(recipe, state: Path, folder: Path) -> tracking.Tracker:
    """One run as the trainer will make it: epochs, the data report, a model file."""
    model = folder / "model.onnx"
    model.write_bytes(b"\x08\x07fake-onnx")
    with tracking.Tracker(recipe, state, root=REPO, run_name="train") as run:
        for epoch in range(3):
            run.log_metrics(epoch, {"train_loss": 1.0 / (epoch + 1), "val_accuracy": 0.7 + epoch / 100})
        run.log_dict({"rows": 5000, "ok": True}, "data_report.json")
        run.log_text("gates: all passed\n", "reports/gates.txt")
        run.log_artifact_file(model, "model")
    return run


@pytest.fixture(scope="module")
def logged(recipe, state, tmp_path_factory):
    return _log(recipe, state, tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module", params=["sqlite", pytest.param("server", marks=pytest.mark.slow)])
def tracked(request, logged, tmp_path_factory):
    """`logged`, and the same run on the shared server (an experiment of its own)."""
    if request.param == "sqlite":
        return logged
    overrides = server_overrides(request.getfixturevalue("mlflow_server"), unique_name("churn"))
    recipe = api.load_recipe("churn", overrides=overrides, project=REPO).recipe
    return _log(recipe, tmp_path_factory.mktemp("state") / ".mlops", tmp_path_factory.mktemp("model"))


def _run(tracker):
    return tracker.client.get_run(tracker.id)


# --- locations ------------------------------------------------------------------------
def test_embedded_uri_and_artifacts_live_under_the_state_dir(logged, state, env):
    assert tracking.tracking_uri(logged.recipe, state) == f"sqlite:///{state.resolve()}/mlflow.db"
    assert (state / "mlflow.db").is_file()
    assert logged.artifact_uri.startswith((state / "mlartifacts").resolve().as_uri())
    assert (state / "mlartifacts").is_dir() and any((state / "mlartifacts").rglob("model.onnx"))
    # MLflow's default artifact root would be ./mlruns in the working directory.
    assert list(env.iterdir()) == []


def test_tracking_uri_from_the_recipe_wins(recipe, tmp_path):
    custom = recipe.model_copy(update={"tracking": recipe.tracking.model_copy(update={"uri": "http://mlflow:5000"})})
    assert tracking.tracking_uri(custom, tmp_path) == "http://mlflow:5000"
    assert tracking.artifact_root(tmp_path) == (tmp_path.resolve() / "mlartifacts").as_uri()


# --- params ---------------------------------------------------------------------------
def test_params_flatten_the_whole_recipe_and_read_back(logged, recipe):
    params = tracking.flatten_params(recipe)
    assert list(params) == sorted(params)  # deterministic order
    # Every leaf `show` reports is a param, lists of scalars joined under their key.
    for leaf in api.show("churn", project=REPO).leaves:
        path = leaf.path if leaf.path in params else re.sub(r"\.\d+$", "", leaf.path)
        assert path in params, leaf.path
    assert params["name"] == "churn"
    assert params["evaluation.metrics"] == ",".join(recipe.evaluation.metrics)
    assert params["ci.environments.1.name"] == "production"  # lists of mappings indexed
    assert params["tracking.uri"] == "null"


def test_every_param_arrives(tracked):
    assert _run(tracked).data.params == tracking.flatten_params(tracked.recipe)  # all batches, nothing altered


def test_param_values_are_cut_to_mlflows_limit(recipe):
    from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH

    long = recipe.model_copy(update={"description": "x" * (MAX_PARAM_VAL_LENGTH + 50)})
    assert len(tracking.flatten_params(long)["description"]) == MAX_PARAM_VAL_LENGTH


def test_the_mlflow_free_limits_are_mlflows():
    from mlflow.utils import validation

    from framework.contracts import params

    assert (params.MAX_PARAM_VAL_LENGTH, params.MAX_ENTITY_KEY_LENGTH) == (
        validation.MAX_PARAM_VAL_LENGTH, validation.MAX_ENTITY_KEY_LENGTH)


# --- metrics, artifacts, tags ---------------------------------------------------------
def test_per_epoch_metrics_are_history(tracked):
    history = tracked.client.get_metric_history(tracked.id, "train_loss")
    assert [(m.step, m.value) for m in sorted(history, key=lambda m: m.step)] == [(0, 1.0), (1, 0.5), (2, 1 / 3)]
    assert _run(tracked).data.metrics["val_accuracy"] == pytest.approx(0.72)


def test_artifacts_and_texts_are_listed(tracked, tmp_path):
    assert sorted(tracked.artifacts()) == [
        "data_report.json", "model/model.onnx", "recipe.resolved.yaml", "reports/gates.txt",
    ]
    from mlflow.artifacts import download_artifacts

    got = Path(download_artifacts(run_id=tracked.id, artifact_path="recipe.resolved.yaml",
                                  dst_path=str(tmp_path), tracking_uri=tracked.uri))
    assert got.read_text() == tracking.resolved_text(tracked.recipe)
    report = Path(download_artifacts(run_id=tracked.id, artifact_path="data_report.json",
                                     dst_path=str(tmp_path), tracking_uri=tracked.uri))
    assert json.loads(report.read_text()) == {"rows": 5000, "ok": True}
    model = Path(download_artifacts(run_id=tracked.id, artifact_path="model/model.onnx",
                                    dst_path=str(tmp_path), tracking_uri=tracked.uri))
    assert model.read_bytes() == b"\x08\x07fake-onnx"


def test_run_tags_name_recipe_env_hash_and_commit(tracked):
    run = _run(tracked)
    tags = run.data.tags
    recipe = tracked.recipe
    text = tracking.resolved_text(recipe)
    assert tags["mlops.recipe"] == "churn"
    assert tags["mlops.environment"] == recipe.environment
    assert tags["mlops.recipe_hash"] == tracking.recipe_hash(text)[:12] == tracking.short_hash(text)
    assert tracking.recipe_hash(text) == hashlib.sha256(text.encode()).hexdigest()
    assert tags["mlflow.runName"] == "train"
    assert run.info.status == "FINISHED"
    assert run.info.experiment_id == tracked.client.get_experiment_by_name(recipe.experiment).experiment_id
    expected = tracking.git_commit(REPO)
    assert tags.get("mlops.git_commit") == expected


def test_git_commit_is_none_outside_a_repo(tmp_path):
    assert tracking.git_commit(tmp_path) is None
    assert tracking.git_commit(tmp_path / "missing") is None  # cwd error, no exception
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True)
    if head.returncode == 0:
        assert tracking.git_commit(REPO) == head.stdout.strip()


# --- status and nesting ---------------------------------------------------------------
def test_a_failing_block_marks_the_run_failed(recipe, state):
    with pytest.raises(RuntimeError, match="boom"):
        with tracking.Tracker(recipe, state, run_name="broken") as run:
            run.log_metrics(0, {"train_loss": 2.0})
            raise RuntimeError("boom")
    assert _run(run).info.status == "FAILED"
    with pytest.raises(KeyboardInterrupt):
        with tracking.Tracker(recipe, state, run_name="interrupted") as run:
            raise KeyboardInterrupt
    assert _run(run).info.status == "KILLED"


def test_child_runs_are_nested_under_the_parent(recipe, state):
    with tracking.Tracker(recipe, state, run_name="hpo") as parent:
        for trial in range(2):
            with parent.child(f"trial-{trial}") as child:
                child.log_params({"lr": 0.01 * (trial + 1)})
                child.log_metrics(0, {"val_loss": 0.5 - trial / 10})
        with pytest.raises(ValueError):
            with parent.child("trial-bad"):
                raise ValueError("diverged")
    children = parent.client.search_runs(
        [parent.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent.id}'"
    )
    by_name = {r.info.run_name: r for r in children}
    assert set(by_name) == {"trial-0", "trial-1", "trial-bad"}
    assert by_name["trial-1"].data.params == {"lr": "0.02"}  # no recipe params on trials
    assert by_name["trial-bad"].info.status == "FAILED"
    assert by_name["trial-0"].info.status == "FINISHED"
    assert by_name["trial-0"].data.tags["mlops.recipe"] == "churn"
    assert _run(parent).info.status == "FINISHED"  # a failed trial doesn't fail the study


def test_child_needs_a_running_parent(recipe, state):
    with pytest.raises(MlopsError, match="has not started"):
        tracking.Tracker(recipe, state).child("trial")


# --- registry -------------------------------------------------------------------------
def test_register_twice_gives_versions_1_and_2_with_tags(tracked):
    text = tracking.resolved_text(tracked.recipe)
    tags = tracking.version_tags(text, {"min_accuracy": True, "fairness": False})
    assert tags == {"mlops.recipe_hash": tracking.short_hash(text), "gate.fairness": "fail", "gate.min_accuracy": "pass"}
    name = unique_name("reg-two")
    assert tracking.register(tracked, "model", name, tags) == "1"
    # A run id works as well as a Tracker (a later process registering a finished run).
    assert tracking.register(tracked.id, "model", name, tags, uri=tracked.uri) == "2"
    assert tracking.model_version_tags(name, "2", uri=tracked.uri) == tags
    version = tracked.client.get_model_version(name, "2")
    assert version.run_id == tracked.id and version.source == f"{tracked.artifact_uri}/model"


def test_candidate_moves_each_time_champion_only_when_direct(tracked, tmp_path):
    uri, name = tracked.uri, unique_name("reg-alias")
    assert tracking.alias_version(unique_name("nobody"), "candidate", uri=uri) is None  # no such model
    v1 = tracking.register(tracked, "model", name)
    assert tracking.alias_version(name, "candidate", uri=uri) is None  # alias unset
    assert tracking.aliases(name, uri=uri) == {"champion": None, "candidate": None, "rejected": None}
    assert tracking.promote(name, v1, "direct", uri=uri) == ["candidate", "champion"]
    v2 = tracking.register(tracked, "model", name)
    assert tracking.promote(name, v2, "canary", uri=uri) == ["candidate"]
    assert tracking.alias_version(name, "candidate", uri=uri) == v2 == "2"
    assert tracking.alias_version(name, "champion", uri=uri) == v1 == "1"
    tracking.set_alias(name, "champion", v2, uri=uri)
    assert tracking.aliases(name, uri=uri) == {"champion": "2", "candidate": "2", "rejected": None}
    # What fetch_model does: the champion's files, from the artifact store (or the server serving it).
    got = tracking.download(name, "champion", tmp_path / "models", uri=uri)
    assert sorted(p.name for p in got.iterdir()) == ["model.onnx"]
    assert (got / "model.onnx").read_bytes() == b"\x08\x07fake-onnx"


def test_register_a_run_id_needs_the_uri(logged):
    with pytest.raises(MlopsError, match="uri"):
        tracking.register(logged.id, "model", "reg-nouri")


# --- the apply lock -------------------------------------------------------------------
_HOLD = """
import sys, time
from pathlib import Path
from framework.runtime.locks import apply_lock
with apply_lock(Path(sys.argv[1]), "churn"):
    print("locked", flush=True)
    time.sleep(60)
"""

_TRY = """
import sys
from pathlib import Path
from framework.errors import MlopsError
from framework.runtime.locks import apply_lock
try:
    with apply_lock(Path(sys.argv[1]), "churn"):
        print("acquired")
except MlopsError as error:
    print(error)
"""


def _python(code: str, *args: str, **kwargs):
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=REPO, stdout=subprocess.PIPE, text=True, **kwargs,
    )


def test_a_second_apply_in_another_process_fails_clearly(tmp_path):
    with apply_lock(tmp_path, "churn") as path:
        assert path == lock_path(tmp_path, "churn") and path.read_text().strip() == str(os.getpid())
        out, _ = _python(_TRY, str(tmp_path)).communicate(timeout=30)
        assert out.strip() == (
            f"apply of churn is already running (pid {os.getpid()}); "
            f"wait for it or remove {path} if that process is gone"
        )
        # flock conflicts per open file, so a second apply in this process fails too.
        with pytest.raises(MlopsError, match="already running"):
            with apply_lock(tmp_path, "churn"):
                pass
        with apply_lock(tmp_path, "other"):  # other recipes are not blocked
            pass
    out, _ = _python(_TRY, str(tmp_path)).communicate(timeout=30)
    assert out.strip() == "acquired"  # released on exit


def test_a_killed_holder_releases_the_lock(tmp_path):
    holder = _python(_HOLD, str(tmp_path))
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(MlopsError, match=f"pid {holder.pid}"):
            with apply_lock(tmp_path, "churn"):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    with apply_lock(tmp_path, "churn"):  # the kernel dropped the dead holder's lock
        pass


def test_two_processes_creating_one_store_at_once_both_succeed(tmp_path, env):
    """The first-use schema setup is serialised; unlocked, the loser fails with
    'table already exists'."""
    code = """
    import sys
    from framework.runtime.tracking import client
    client(sys.argv[1]).search_experiments()
    print("ok")
    """
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    procs = [_python(code, uri, env={**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}) for _ in range(2)]
    assert [p.communicate(timeout=60)[0].strip() for p in procs] == ["ok", "ok"]
