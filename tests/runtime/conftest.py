"""A copy of the project with the churn data, for runs that write .mlops/ and generated/."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import copy_project


@pytest.fixture
def churn_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = copy_project(tmp_path, ("recipes", "data"))
    monkeypatch.chdir(root)
    for name, value in {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0", "MLFLOW_DISABLE_TELEMETRY": "true"}.items():
        monkeypatch.setenv(name, value)
    return root
