"""Weights & Biases beside MLflow (`tracking.backends: [mlflow, wandb]`): every tracked run
mirrored offline under <state dir>/wandb/, read back with wandb's own reader and compared
with its MLflow run, metric for metric and step for step; and the one-line errors when the
extra or the online API key is missing. The end-to-end apply is slow (about a minute)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from framework import api
from framework.errors import MlopsError
from framework.runtime import tracking
from framework.runtime.wandb_mirror import NO_MIRROR, TAG_DIR, TAG_RUN, WandbMirror
from tests.conftest import REPO, run_cli
from tests.runtime.wandb_runs import mlflow_metrics, read_offline_run
from tests.tabular_project import tiers_frame, tiers_recipe, write_project

# MLflow 3.17's sqlalchemy store configures a loader SQLAlchemy 2.1 deprecates; not ours.
pytestmark = pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy:DeprecationWarning")

WANDB = "+tracking.backends=[mlflow,wandb]"
GATES = "evaluation/gates"
NO_EXTRA = "tracking.backends: wandb needs the wandb extra, which is not installed: pip install -e '.[wandb]'"


@pytest.fixture(autouse=True)
def _wandb_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The variables the mirror sets for wandb (WandbMirror._environment), unset again after each test."""
    for name in ("WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_ERROR_REPORTING"):
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)


def _recipe(*overrides: str):
    return api.load_recipe("churn", overrides=[WANDB, *overrides], project=REPO).recipe


def _assert_mirrored(client, run_id: str) -> "object":
    """The MLflow run and its W&B mirror agree on id, name, params and every metric's history."""
    mlflow_run = client.get_run(run_id)
    mirror = read_offline_run(Path(mlflow_run.data.tags[TAG_DIR]))
    assert mirror.run["run_id"] == run_id and mirror.run["display_name"] == mlflow_run.info.run_name
    assert mlflow_run.data.tags[TAG_RUN] == f"{mirror.run['project']}/{run_id}"
    assert mirror.config == mlflow_run.data.params  # the same flattened keys and texts
    assert mirror.metrics(tables=(GATES,)) == mlflow_metrics(client, run_id)
    return mirror


def _model_reference(mirror) -> tuple[str, dict]:
    (model,) = [a for a in mirror.artifacts if a["type"] == "model"]
    (entry,) = model["manifest"]["contents"]
    return entry["ref"], json.loads(model["metadata"])


# --- the mirror, through the Tracker ------------------------------------------------------
def test_a_run_and_its_trial_mirror_to_wandb_offline(env, tmp_path):
    recipe = _recipe()
    state = tmp_path / ".mlops"
    model = tmp_path / "model.onnx"
    model.write_bytes(b"\x08\x07fake-onnx")
    gates = [{"name": "min_accuracy", "threshold": 0.7, "observed": 0.8, "passed": True},
             {"name": "max_latency_p95_ms", "threshold": 10.0, "observed": None, "passed": False}]
    with tracking.Tracker(recipe, state, run_name="train") as run:
        assert isinstance(run.mirror, WandbMirror)
        for epoch in range(3):  # steps out of order, as the trainer logs them: W&B keeps each at its own
            run.log_metrics(epoch, {"train_loss": 1.0 / (epoch + 1), "val_loss": 2.0 / (epoch + 2)})
        run.log_metrics(0, {"data.null_count.tenure_months": 4})
        run.log_metrics(3, {"val_accuracy": 0.8})
        with run.child("trial-1") as trial:
            trial.log_params({"training.optimizer.lr": 0.01, "model.hidden_sizes": [32, 16]})
            trial.log_metrics(0, {"val_roc_auc": 0.75})
        run.log_params({"hpo.best.training.optimizer.lr": 0.01})
        run.mirror.log_table(gates, GATES, 3)
        run.log_artifact_file(model, "model")
        version = tracking.register(run, "model", "wandb-mirror")

    client = run.client
    mirror = _assert_mirrored(client, run.id)
    assert mirror.metrics(tables=(GATES,))["train_loss"] == [(0, 1.0), (1, 0.5), (2, 1 / 3)]
    assert mirror.run["project"] == "churn" and mirror.run["tags"] == ["churn", "dev"] and mirror.exit_code == 0
    step, table = mirror.table(GATES)
    assert step == 3 and table["columns"] == ["name", "threshold", "observed", "passed"]
    assert table["data"] == [["min_accuracy", 0.7, 0.8, True], ["max_latency_p95_ms", 10.0, None, False]]
    reference, metadata = _model_reference(mirror)
    assert reference == f"models:/wandb-mirror/{version}"
    assert metadata["version"] == version and metadata["mlflow_run_id"] == run.id
    assert metadata["source"] == client.get_model_version("wandb-mirror", version).source

    (trial_run,) = client.search_runs([run.experiment_id], f"tags.mlflow.parentRunId = '{run.id}'")
    trial_mirror = _assert_mirrored(client, trial_run.info.run_id)
    assert trial_mirror.run["run_group"] == run.id and trial_mirror.run["job_type"] == "hpo-trial"
    assert trial_mirror.config == {"training.optimizer.lr": "0.01", "model.hidden_sizes": "[32, 16]"}
    # Everything W&B wrote is under the state dir: the runs, its logs, the staged table.
    assert Path(client.get_run(run.id).data.tags[TAG_DIR]).parent == state.resolve() / "wandb"
    assert list((state / "wandb" / "data").rglob("*")) and list(env.iterdir()) == []
    assert os.environ["WANDB_ERROR_REPORTING"] == "false"  # offline: wandb reports nothing home either


def test_a_failed_block_fails_the_mirrored_run_too(env, tmp_path):
    with pytest.raises(ValueError), tracking.Tracker(_recipe(), tmp_path / ".mlops", run_name="broken") as run:
        run.log_metrics(0, {"train_loss": 1.0})
        raise ValueError("boom")
    assert run.client.get_run(run.id).info.status == "FAILED"
    assert read_offline_run(Path(run.client.get_run(run.id).data.tags[TAG_DIR])).exit_code == 1


def test_mlflow_alone_has_no_mirror(env, recipe, tmp_path):
    assert recipe.tracking.backends == ["mlflow"] and recipe.tracking.wandb is None
    with tracking.Tracker(recipe, tmp_path / ".mlops", run_name="plain") as run:
        run.log_metrics(0, {"train_loss": 1.0})
    assert run.mirror is NO_MIRROR and run.mirror.where is None
    assert not {TAG_RUN, TAG_DIR} & set(run.client.get_run(run.id).data.tags)
    assert not (tmp_path / ".mlops" / "wandb").exists()


def test_online_logs_in_with_the_key_from_the_environment(tmp_path, monkeypatch):
    recipe = _recipe("+tracking.wandb={mode: online, entity: ml-platform, api_key: {name: wandb, key: api-key}}")
    mirror = WandbMirror(recipe, tmp_path)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    with pytest.raises(MlopsError) as raised:
        mirror.check()
    assert str(raised.value) == ("tracking.wandb.api_key: mode online logs in with WANDB_API_KEY, which is not set: "
                                 "export the value of the Secret wandb (key api-key) as WANDB_API_KEY, or give it to "
                                 "the job's pods")
    monkeypatch.setenv("WANDB_API_KEY", "k" * 40)
    mirror.check()
    import wandb

    settings = mirror._settings(wandb)
    assert settings.mode == "online" and settings.api_key == "k" * 40 and settings.console == "off"


# --- without the extra --------------------------------------------------------------------
def _tiers_with_wandb(tmp_path: Path) -> Path:
    return write_project(tmp_path, tiers_frame(), {**tiers_recipe(), "tracking": {"backends": ["mlflow", "wandb"]}})


def test_without_the_extra_apply_says_so_in_one_line(tmp_path, monkeypatch):
    root = _tiers_with_wandb(tmp_path)
    monkeypatch.chdir(root)
    dry = run_cli("apply", "tiers", "--dry-run")
    assert dry.exit_code == 0 and "mirrored to W&B project tiers (offline under .mlops/wandb)" in dry.stdout
    monkeypatch.setitem(sys.modules, "wandb", None)  # what `import wandb` meets without the extra

    result = run_cli("apply", "tiers")
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.stdout + result.stderr
    assert [line for line in result.stderr.splitlines() if "wandb" in line] == [NO_EXTRA]
    assert "training on Ray" not in result.stderr
    # Refused before any run exists: no tracking store was created.
    assert not (root / ".mlops" / "mlflow.db").exists()


def test_a_cluster_job_refuses_offline_runs_it_would_lose(tmp_path, monkeypatch):
    recipe = {**tiers_recipe(), "tracking": {"uri": "http://mlflow.example:5000", "backends": ["mlflow", "wandb"]}}
    monkeypatch.chdir(write_project(tmp_path, tiers_frame(), recipe))
    result = run_cli("apply", "tiers", "--target", "ray", "--address", "http://127.0.0.1:8265", "--dry-run")
    assert result.exit_code == 1 and "Traceback" not in result.stdout + result.stderr
    assert result.stderr.strip() == (
        "tracking.wandb.mode: --target ray runs the job on the cluster, where offline W&B runs stay in the job's pod: "
        "set tracking.wandb.mode online (with tracking.wandb.api_key), or pass --head-shares-disk when the head sees "
        "this project at the same path")


def test_without_the_extra_the_training_job_says_so_in_one_line(tmp_path):
    """The RayJob's entrypoint (`python -m framework.runtime.training`), in its own process."""
    root = _tiers_with_wandb(tmp_path)
    assert api.generate(["tiers"], project=root).added
    code = ("import sys; sys.modules['wandb'] = None; from framework.runtime.training.run import main; "
            "sys.exit(main(sys.argv[1:]))")
    done = subprocess.run(
        [sys.executable, "-c", code, "generated/tiers/dev/recipe.resolved.yaml", "--state-dir", ".mlops"],
        cwd=root, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(REPO), "RAY_USAGE_STATS_ENABLED": "0", "MLFLOW_DISABLE_TELEMETRY": "true"},
    )
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-3000:]
    assert "Traceback" not in done.stdout + done.stderr
    assert [line for line in done.stderr.splitlines() if "wandb" in line] == [NO_EXTRA]


# --- end to end ---------------------------------------------------------------------------
@pytest.mark.slow
def test_apply_mirrors_every_run_to_wandb_metric_for_metric(churn_project: Path) -> None:
    """Ray Train's epochs (reported by the workers to the driver), the HPO trials, the data's
    null counts and the validation scores: every MLflow run has its W&B run, equal."""
    recipe = churn_project / "recipes" / "churn.yaml"
    text = recipe.read_text().replace("  - training: ray_cpu\n", "  - training: ray_cpu_hpo\n")
    recipe.write_text(text + "training:\n  epochs: 2\n  hpo:\n    n_trials: 2\n"
                             "tracking:\n  backends: [mlflow, wandb]\n")

    result = run_cli("apply", "churn")
    assert result.exit_code == 0, result.stderr[-3000:]
    assert "model version 1 (candidate), gates passed" in result.stdout

    client = tracking.client(f"sqlite:///{churn_project / '.mlops' / 'mlflow.db'}")
    version = client.get_model_version("churn", "1")
    assert f"  W&B run churn/{version.run_id} (offline; upload it: wandb sync {churn_project / '.mlops' / 'wandb'}" \
        in result.stdout
    runs = client.search_runs([client.get_experiment_by_name("churn").experiment_id])
    assert len(runs) == 3  # the training run and its two trials
    mirrors = {r.info.run_id: _assert_mirrored(client, r.info.run_id) for r in runs}
    assert len(list((churn_project / ".mlops" / "wandb").glob("offline-run-*"))) == 3

    trained = mirrors[version.run_id]
    metrics = trained.metrics(tables=(GATES,))
    assert [step for step, _ in metrics["train_loss"]] == [0, 1]  # every epoch, at its epoch
    assert {"val_accuracy", "hpo_best_roc_auc"} <= set(metrics)
    assert any(key.startswith("data.null_count.") for key in metrics)
    step, table = trained.table(GATES)
    gates_json = client.download_artifacts(version.run_id, "evaluation/gates.json", str(churn_project))
    gates = json.loads(Path(gates_json).read_text())
    assert step == 2 and table["columns"] == list(gates["gates"][0])
    assert table["data"] == [list(row.values()) for row in gates["gates"]]
    reference, metadata = _model_reference(trained)
    assert reference == "models:/churn/1" and metadata["source"] == version.source
    trials = [m for run_id, m in mirrors.items() if run_id != version.run_id]
    assert all(m.run["run_group"] == version.run_id and m.exit_code == 0 for m in trials)
