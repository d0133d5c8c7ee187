"""A model repository built here (churn's config.pbtxt and two versions of a tiny MLP,
exported by the framework's own exporter) and the embedded host serving it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from framework import api
from tests.conftest import REPO

VERSIONS = ("1", "2")


@dataclass
class Served:
    url: str  # host:port, as tritonclient wants it
    app: object
    repo: Path
    state: Path
    recipe: object

    @property
    def base(self) -> str:
        return f"http://{self.url}"


@pytest.fixture(scope="session")
def churn_recipe():
    return api.load_recipe("churn", project=REPO).recipe


def export_version(recipe, path: Path, seed: int) -> Path:
    import torch

    from framework.runtime.export import export_onnx
    from framework.runtime.model import TabularNet
    from framework.signature import model_signature

    torch.manual_seed(seed)
    net = TabularNet(width=model_signature(recipe).input.width, outputs=2, task="classification", hidden_sizes=[16, 8])
    return export_onnx(net, recipe, path)


def write_config(recipe, model_dir: Path) -> None:
    from framework.targets.triton import render

    (artifact,) = render(recipe)
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / "config.pbtxt").write_text(artifact.text, encoding="utf-8")


@pytest.fixture(scope="session")
def model_repo(tmp_path_factory, churn_recipe) -> Path:
    """churn/config.pbtxt (max_batch_size 32, preferred 8/16/32, 500 us, 2 instances,
    latest 2) and versions 1 and 2 (different weights)."""
    root = tmp_path_factory.mktemp("model_repository")
    for seed, version in enumerate(VERSIONS, start=1):
        export_version(churn_recipe, root / "churn" / version / "model.onnx", seed)
    write_config(churn_recipe, root / "churn")
    return root


def ort_outputs(repo: Path, version: str, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(repo / "churn" / version / "model.onnx"), providers=["CPUExecutionProvider"])
    return session.run(None, {"features": x})[0]


@pytest.fixture(scope="module")
def served(tmp_path_factory, model_repo, churn_recipe):
    """The embedded host on 127.0.0.1 (a free port), logging every request."""
    from framework.runtime.serve import EmbeddedServer, build_app

    state = tmp_path_factory.mktemp("state")
    app = build_app(churn_recipe, model_repo, state, log_sample_rate=1.0)
    with EmbeddedServer(app) as server:
        yield Served(server.url, app, model_repo, state, churn_recipe)


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
