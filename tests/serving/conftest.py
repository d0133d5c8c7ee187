"""A model repository built here and the embedded host serving it.

churn's config.pbtxt (rendered from the recipe) and two versions of a small MLP, each
exported by the framework's own exporter from a FeaturePipeline fitted on the churn CSV:
the model contract of framework/signature.py, one input per raw column (FP32 numbers,
BYTES categories, imputation and one-hot inside the graph), `probabilities` and `label`
(the class names) out. Each version is trained for a few full-batch steps, from its own
seed, so the two differ and both classes occur among the labels.

Helpers the test modules share: `rows` (churn rows as a DataFrame), `inputs` (the same
rows as request tensors, {column: [rows, 1]}), `messy_inputs` (with a null number, a
null category and an unseen one), `ort_outputs` (what ONNX Runtime answers for a
version), `triton_inputs` (tritonclient tensors) and `text` (BYTES as str)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from framework import api
from tests.conftest import REPO

VERSIONS = ("1", "2")
CSV = REPO / "data" / "churn.csv"
TRAIN_ROWS = 4000  # the pipeline and the weights are fitted on these; the rest are unseen


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


# --- data: rows and request tensors ---------------------------------------------------
@functools.cache
def _frame() -> pd.DataFrame:
    return pd.read_csv(CSV)


@functools.cache
def _recipe(*overrides: str):
    return api.load_recipe("churn", project=REPO, overrides=list(overrides)).recipe


@functools.cache
def churn_pipeline():
    """The churn FeaturePipeline, fitted on the first TRAIN_ROWS rows of the CSV."""
    from framework.runtime.training.features import FeaturePipeline

    return FeaturePipeline.fit(_recipe(), _frame().iloc[:TRAIN_ROWS])


def rows(n: int, seed: int = 0) -> pd.DataFrame:
    """n rows of the churn CSV drawn with `seed` (with replacement)."""
    frame = _frame()
    picked = np.random.default_rng(seed).integers(0, len(frame), size=n)
    return frame.iloc[picked].reset_index(drop=True)


def inputs(n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """n churn rows as the model's request tensors: {column: [n, 1]}, FP32 or text,
    without nulls (tritonclient's JSON form cannot send NaN)."""
    frame = rows(n, seed)
    frame["total_charges"] = frame["total_charges"].fillna(100.0)
    return churn_pipeline().raw_inputs(frame)


def messy_inputs(n: int = 4, seed: int = 0) -> dict[str, np.ndarray]:
    """As `inputs`, with a null number (row 0), a null category (row 1) and categories
    training never saw (rows 0 and 2): the graph imputes and encodes them as training did."""
    assert n >= 3
    frame = rows(n, seed)
    frame.loc[0, "total_charges"] = np.nan
    frame.loc[1, "contract"] = None
    frame.loc[0, "payment_method"] = "crypto"
    frame.loc[2, "contract"] = "weekly"
    return churn_pipeline().raw_inputs(frame)


def text(array: np.ndarray) -> np.ndarray:
    """A BYTES tensor as str (tritonclient gives bytes from binary data, str from JSON)."""
    flat = [v.decode() if isinstance(v, bytes) else str(v) for v in np.asarray(array).reshape(-1)]
    return np.array(flat, dtype=object).reshape(np.shape(array))


@functools.cache
def _session(path: str):
    import onnxruntime as ort

    return ort.InferenceSession(path, providers=["CPUExecutionProvider"])


def ort_outputs(repo: Path, version: str, tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """ONNX Runtime's answer of one version: {"probabilities": [n, 2], "label": [n, 1]}."""
    session = _session(str(repo / "churn" / version / "model.onnx"))
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, tensors)))


def triton_inputs(tensors: dict[str, np.ndarray], binary: bool = True) -> list:
    """tritonclient.http InferInputs, one per column: FP32, or BYTES for text."""
    import tritonclient.http as triton

    out = []
    for name, array in tensors.items():
        tensor = triton.InferInput(name, list(array.shape), "BYTES" if array.dtype == object else "FP32")
        tensor.set_data_from_numpy(array, binary_data=binary)
        out.append(tensor)
    return out


# --- the model repository -------------------------------------------------------------
@pytest.fixture(scope="session")
def churn_recipe():
    return api.load_recipe("churn", project=REPO).recipe


def train_net(pipeline, seed: int, steps: int = 40, hidden_sizes=(16, 8)):
    """A TabularNet with the pipeline's standardisation, `steps` full-batch Adam steps on
    the training rows from `seed` (a few: the versions differ and predict both classes)."""
    import torch

    from framework.runtime.training.model import TabularNet

    frame = _frame().iloc[:TRAIN_ROWS]
    x, y = torch.from_numpy(pipeline.transform(frame)), torch.from_numpy(pipeline.targets(frame))
    mean, std = pipeline.standardisation()
    torch.manual_seed(seed)
    net = TabularNet(width=pipeline.width, outputs=pipeline.num_outputs, task=pipeline.task,
                     hidden_sizes=list(hidden_sizes), mean=mean, std=std)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(steps):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(net.logits(x), y).backward()
        optimizer.step()
    return net.eval()


def export_version(recipe, path: Path, seed: int) -> Path:
    from framework.runtime.training.export import export_onnx

    pipeline = churn_pipeline()
    return export_onnx(train_net(pipeline, seed, steps=20 * seed), recipe, pipeline, path)


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


@pytest.fixture(scope="module")
def served(tmp_path_factory, model_repo, churn_recipe):
    """The embedded host on 127.0.0.1 (a free port), logging every request."""
    from framework.runtime.serving.host import EmbeddedServer, build_app

    state = tmp_path_factory.mktemp("state")
    app = build_app(churn_recipe, model_repo, state, log_sample_rate=1.0)
    with EmbeddedServer(app) as server:
        yield Served(server.url, app, model_repo, state, churn_recipe)


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
