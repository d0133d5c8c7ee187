"""`mlops apply` with `training.hpo`: Optuna through Ray Tune, trials as nested MLflow
runs, the best values train the final model. Slow (about a minute)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli

pytestmark = pytest.mark.slow


def _use_hpo(root: Path, trials: int, epochs: int) -> None:
    recipe = root / "recipes" / "churn.yaml"
    text = recipe.read_text().replace("  - training: ray_cpu\n", "  - training: ray_cpu_hpo\n")
    recipe.write_text(text + f"training:\n  epochs: {epochs}\n  hpo:\n    n_trials: {trials}\n")


def test_hpo_runs_trials_as_nested_runs_and_trains_the_best(churn_project: Path) -> None:
    import mlflow

    _use_hpo(churn_project, trials=3, epochs=2)
    result = run_cli("apply", "churn")
    assert result.exit_code == 0, result.stderr[-3000:]
    assert "trial 3/3" in result.stderr and "HPO trials by roc_auc" in result.stderr
    assert "model version 1 (candidate), gates passed" in result.stdout

    client = mlflow.MlflowClient(f"sqlite:///{churn_project / '.mlops' / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("churn").experiment_id])
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    trials = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(r.info.run_name for r in trials) == ["trial-1", "trial-2", "trial-3"]
    assert all(r.info.status == "FINISHED" for r in trials)
    scores = {r.info.run_id: r.data.metrics["val_roc_auc"] for r in trials}
    best = max(trials, key=lambda r: scores[r.info.run_id])
    for key in ("training.optimizer.lr", "training.optimizer.weight_decay", "model.hidden_sizes"):
        assert parent.data.params[f"hpo.best.{key}"] == best.data.params[key]
    assert parent.data.metrics["hpo_best_roc_auc"] == pytest.approx(scores[best.info.run_id])
    assert len(client.get_metric_history(best.info.run_id, "val_loss")) == 2  # every epoch of a trial
    assert len(client.get_metric_history(parent.info.run_id, "train_loss")) == 2  # the final training
    # The search is done: a later apply of the same recipe searches again.
    assert not list((churn_project / ".mlops" / "runs").rglob("hpo.json"))
