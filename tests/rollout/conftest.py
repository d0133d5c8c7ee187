"""Rollout fixtures: the churn recipe, a model repository with two versions of a tiny
MLP (as tests/serving builds it), an MLflow registry (sqlite in a temporary state dir)
holding those two versions, and a fake traffic source that drives a router directly."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from framework import api
from tests.conftest import REPO
from tests.serving.conftest import export_version, write_config

WIDTH = 13


@pytest.fixture(scope="session")
def churn_recipe():
    return api.load_recipe("churn", project=REPO).recipe


def load(*overrides: str):
    return api.load_recipe("churn", overrides=list(overrides), project=REPO).recipe


@pytest.fixture(scope="session")
def model_files(tmp_path_factory, churn_recipe) -> dict[str, Path]:
    """model.onnx of versions 1 and 2 (different weights) and 'same' (version 1's weights)."""
    root = tmp_path_factory.mktemp("models")
    files = {version: export_version(churn_recipe, root / version / "model.onnx", seed) for seed, version in ((1, "1"), (2, "2"))}
    (root / "same").mkdir()
    files["same"] = Path(shutil.copy(files["1"], root / "same" / "model.onnx"))
    return files


@pytest.fixture(scope="session")
def model_repo(tmp_path_factory, churn_recipe, model_files) -> Path:
    root = tmp_path_factory.mktemp("model_repository")
    for version in ("1", "2"):
        (root / "churn" / version).mkdir(parents=True)
        shutil.copy(model_files[version], root / "churn" / version / "model.onnx")
    write_config(churn_recipe, root / "churn")
    return root


def register(recipe, state: Path, files: list[Path]) -> tuple[str, list[str]]:
    """Register each file as a version of the recipe's model (artifacts in the run):
    (tracking uri, versions)."""
    from framework.runtime import tracking

    with tracking.Tracker(recipe, state, run_name="versions") as run:
        versions = []
        for index, path in enumerate(files, 1):
            staged = state.parent / "staged" / str(index) / "model.onnx"
            staged.parent.mkdir(parents=True)
            shutil.copy(path, staged)
            run.log_artifact_file(staged, f"model{index}")
            versions.append(tracking.register(run, f"model{index}", recipe.registered_model))
    return run.uri, versions


def set_aliases(recipe, uri: str, champion: str | None = "1", candidate: str | None = "2") -> None:
    """champion and candidate as given (None deletes), rejected cleared."""
    from framework.runtime import tracking

    client = tracking.client(uri)
    name = recipe.registered_model
    for alias, version in (("champion", champion), ("candidate", candidate), ("rejected", None)):
        if version is None:
            if tracking.alias_version(name, alias, uri=uri) is not None:
                client.delete_registered_model_alias(name, alias)
        else:
            tracking.set_alias(name, alias, version, uri=uri)


@pytest.fixture(autouse=True)
def _quiet_mlflow(monkeypatch):
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")


class FakeTraffic:
    """traffic(n, headers) that calls the router as the app would: route, observe after
    the answer, compare after a shadow; errors and latencies per version."""

    def __init__(self, router, *, errors=None, latency=None, agree=True, model="churn", seed=0):
        self.router = router
        self.errors = errors or {}
        self.latency = latency or {}
        self.agree = agree
        self.model = model
        self.rng = np.random.default_rng(seed)
        self.sent = 0
        self.routes: list[str] = []

    def __call__(self, n, headers=None):
        for _ in range(n):
            self.sent += 1
            primary, shadow = self.router.route(self.model, dict(headers or {}))
            self.routes.append(primary)
            ok = self.rng.random() >= self.errors.get(primary, 0.0)
            seconds = self.latency.get(primary, 0.002)
            self.router.observe(self.model, primary, ok, seconds)
            if shadow is not None and ok:
                if self.rng.random() < self.errors.get(shadow, 0.0):
                    self.router.observe(self.model, shadow, False, self.latency.get(shadow, 0.002))
                else:
                    agree = self.agree if isinstance(self.agree, bool) else self.rng.random() < self.agree
                    self.router.compare(self.model, primary, shadow, agree, self.latency.get(shadow, 0.002) - seconds)
