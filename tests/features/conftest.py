"""A user's project with a Feast feature repository: the churn_features recipe, its
label rows and feature_repo/ (definitions and the parquet source, no registry or online
store yet), a .gitignore like Feast's own template, and a short training."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO


def feast_project(root: Path, epochs: int = 2) -> Path:
    root.mkdir(parents=True)
    shutil.copytree(REPO / "recipes", root / "recipes")
    (root / "data").mkdir()
    shutil.copy(REPO / "data" / "churn_labels.csv", root / "data" / "churn_labels.csv")
    shutil.copytree(REPO / "feature_repo", root / "feature_repo", ignore=shutil.ignore_patterns("*.db", "__pycache__"))
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    (root / ".gitignore").write_text(".mlops/\n.venv/\n__pycache__/\nfeature_repo/data/*.db\n")
    recipe = root / "recipes" / "churn_features.yaml"
    recipe.write_text(recipe.read_text() + f"\ntraining:\n  epochs: {epochs}\n  workers: 1\n")
    return root


@pytest.fixture(scope="module")
def applied(tmp_path_factory):
    """The project after `mlops apply churn_features` (feast apply, materialize, training
    from the point-in-time join, registry, rollout); the working directory meanwhile."""
    from tests.conftest import run_cli

    root = feast_project(tmp_path_factory.mktemp("feast") / "proj")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        # Ray reads its auth mode once per process: every apply in the suite runs it disabled
        for name, value in {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0",
                            "MLFLOW_DISABLE_TELEMETRY": "true"}.items():
            mp.setenv(name, value)
        result = run_cli("apply", "churn_features")
        assert result.exit_code == 0, result.stderr[-3000:] + result.stdout[-3000:]
        yield root, result
