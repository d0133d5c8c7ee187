"""Loading a Triton model repository: version policies, runners, and what a broken one says."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from framework import api
from framework.errors import MlopsError
from framework.runtime.serving.model_config import parse_config
from framework.runtime.serving.repository import load_repository, select_versions
from tests.conftest import REPO
from tests.serving.conftest import ort_outputs, write_config


def config_with(policy: str):
    return parse_config(f'name: "m" platform: "onnxruntime_onnx" max_batch_size: 4 version_policy {{ {policy} }}\n'
                        'input [ { name: "x" data_type: TYPE_FP32 dims: [ 2 ] } ] output [ { name: "y" data_type: TYPE_FP32 dims: [ 1 ] } ]')


@pytest.mark.parametrize(
    ("policy", "load", "missing"),
    [
        ("latest { num_versions: 1 }", [10], {}),
        ("latest { num_versions: 2 }", [2, 10], {}),
        ("latest { num_versions: 9 }", [1, 2, 10], {}),
        ("specific { versions: [ 1, 3 ] }", [1], {3: "not found in the model repository"}),
        ("all { }", [1, 2, 10], {}),
    ],
)
def test_version_policies(policy, load, missing):
    assert select_versions(config_with(policy), {1: "a", 2: "b", 10: "c"}) == (load, missing)


@pytest.fixture()
def repo(tmp_path, model_repo) -> Path:
    copy = tmp_path / "repo"
    shutil.copytree(model_repo, copy)
    return copy


def edit_config(repo: Path, old: str, new: str) -> None:
    path = repo / "churn" / "config.pbtxt"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_latest_two_serves_the_two_newest(repo, model_repo):
    shutil.copytree(repo / "churn" / "1", repo / "churn" / "3")
    (repo / "churn" / "7").mkdir()  # a version folder without a model file is not a version
    loaded = load_repository(repo)
    assert loaded.versions() == {"churn": ["2", "3"]}
    x = np.ones((2, 13), dtype=np.float32)
    out = loaded.models["churn"].versions["3"].runner.run({"features": x})
    np.testing.assert_allclose(out["probabilities"], ort_outputs(model_repo, "1", x), rtol=1e-6)


def test_specific_versions_report_the_missing_one_unavailable(repo):
    edit_config(repo, "latest { num_versions: 2 }", "specific { versions: [ 1, 4 ] }")
    loaded = load_repository(repo)
    assert loaded.versions() == {"churn": ["1"]}
    assert loaded.index() == [
        {"name": "churn", "version": "1", "state": "READY", "reason": ""},
        {"name": "churn", "version": "4", "state": "UNAVAILABLE", "reason": "not found in the model repository"},
    ]


def test_column_names_come_from_the_onnx_file_without_a_recipe(repo, churn_recipe):
    from framework.signature import model_signature

    assert load_repository(repo).models["churn"].columns == model_signature(churn_recipe).columns


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('name: "churn"', 'name: "other"', "config.pbtxt names the model 'other' but its folder is 'churn' (Triton requires them equal)"),
        ('platform: "onnxruntime_onnx"', 'platform: "tensorflow_savedmodel"', "platform: 'tensorflow_savedmodel' cannot be served here; supported: onnxruntime_onnx, pytorch_libtorch"),
        ('name: "features"', 'name: "inputs"', "the model's inputs ['features'] differ from config.pbtxt's ['inputs']"),
        ("max_batch_size: 32", "max_batch_size: 32\nmax_batch_size: 8", "max_batch_size: set more than once"),
    ],
)
def test_broken_repositories_say_what_is_wrong(repo, old, new, message):
    edit_config(repo, old, new)
    with pytest.raises(MlopsError, match=re.escape(message)):
        load_repository(repo)


def test_no_versions_or_no_repository(tmp_path, churn_recipe):
    write_config(churn_recipe, tmp_path / "repo" / "churn")
    with pytest.raises(MlopsError, match=re.escape("no version folder with model.onnx (e.g. ") + ".*run `mlops apply` first"):
        load_repository(tmp_path / "repo")
    with pytest.raises(MlopsError, match=re.escape("no model repository here: run `mlops apply` first")):
        load_repository(tmp_path / "absent")


def test_torchscript_model_pt(tmp_path):
    """serving.format torchscript: model.pt on TorchScript, INPUT__0 -> OUTPUT__0, via tritonclient."""
    import torch
    import tritonclient.http as triton

    from framework.runtime.export import export_torchscript
    from framework.runtime.model import TabularNet
    from framework.runtime.serve import EmbeddedServer, build_app

    recipe = api.load_recipe("churn", overrides=["serving.format=torchscript"], project=REPO).recipe
    torch.manual_seed(0)
    net = TabularNet(width=13, outputs=2, task="classification", hidden_sizes=[8])
    export_torchscript(net, tmp_path / "repo" / "churn" / "1" / "model.pt")
    write_config(recipe, tmp_path / "repo" / "churn")
    app = build_app(recipe, tmp_path / "repo", tmp_path / "state", log_sample_rate=0)
    x = np.random.default_rng(0).normal(size=(3, 13)).astype(np.float32)
    with torch.no_grad():
        expected = net.eval()(torch.from_numpy(x)).numpy()
    with EmbeddedServer(app) as server, triton.InferenceServerClient(server.url) as client:
        tensor = triton.InferInput("INPUT__0", [3, 13], "FP32")
        tensor.set_data_from_numpy(x)
        got = client.infer("churn", [tensor]).as_numpy("OUTPUT__0")
        assert client.get_model_metadata("churn")["platform"] == "pytorch_libtorch"
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_serving_imports_no_torch_ray_or_mlflow(model_repo):
    code = (
        "import sys; from framework.runtime.serve import build_app; "
        f"app = build_app('generated/churn/dev/recipe.resolved.yaml', {str(model_repo)!r}, {str(model_repo.parent / 'st')!r}); "
        "print(sorted(m for m in ('torch', 'ray', 'mlflow', 'pandas', 'evidently') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
