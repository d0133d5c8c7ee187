"""A user's checkout of the project with the churn data (tests/user_project.py), for runs that write .mlops/ and generated/;
and the module-scoped MLflow fixtures (env, recipe, state) of the tracking and distillation tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from framework import api
from tests.conftest import REPO, copy_project
from tests.user_project import make_user_project


@pytest.fixture
def churn_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = copy_project(tmp_path, ("recipes", "data"))
    make_user_project(root, generated_from=REPO)  # git, .gitignore, a .venv, committed generated/
    monkeypatch.chdir(root)
    for name, value in {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0", "MLFLOW_DISABLE_TELEMETRY": "true"}.items():
        monkeypatch.setenv(name, value)
    return root


# Module-scoped MLflow setting shared by the tracking and distillation tests.
@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """A clean working directory (to prove nothing lands in ./mlruns or ./mlflow.db), no
    telemetry thread phoning home from the sandbox, no progress bars; undone after the module."""
    cwd = tmp_path_factory.mktemp("cwd")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
        mp.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        mp.chdir(cwd)
        yield cwd


@pytest.fixture(scope="module")
def recipe():
    return api.load_recipe("churn", project=REPO).recipe


@pytest.fixture(scope="module")
def state(env, tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("state") / ".mlops"
