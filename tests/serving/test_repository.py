"""Loading a Triton model repository: version policies, runners, and what a broken one says."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from framework import api
from framework.contracts.triton import ModelConfig, ModelTensor, VersionPolicy, model_config
from framework.errors import MlopsError
from framework.runtime.serving.repository import load_repository, select_versions
from tests.conftest import REPO
from tests.serving.conftest import churn_pipeline, messy_inputs, ort_outputs, rows, text, train_net, write_config


def config_with(policy: VersionPolicy) -> ModelConfig:
    return ModelConfig("m", "onnxruntime_onnx", 4, (ModelTensor("x", "TYPE_FP32", (2,)),), (ModelTensor("y", "TYPE_FP32", (1,)),),
                       "model.onnx", version_policy=policy)


@pytest.mark.parametrize(
    ("policy", "load", "missing"),
    [
        (VersionPolicy("latest", num_versions=1), [10], {}),
        (VersionPolicy("latest", num_versions=2), [2, 10], {}),
        (VersionPolicy("latest", num_versions=9), [1, 2, 10], {}),
        (VersionPolicy("specific", versions=(1, 3)), [1], {3: "not found in the model repository"}),
        (VersionPolicy("all"), [1, 2, 10], {}),
    ],
)
def test_version_policies(policy, load, missing):
    assert select_versions(config_with(policy), {1: "a", 2: "b", 10: "c"}) == (load, missing)


@pytest.fixture()
def repo(tmp_path, model_repo) -> Path:
    copy = tmp_path / "repo"
    shutil.copytree(model_repo, copy)
    return copy


@pytest.fixture()
def config(churn_recipe) -> ModelConfig:
    return model_config(churn_recipe)  # latest 2


def test_latest_two_serves_the_two_newest(repo, model_repo, config):
    shutil.copytree(repo / "churn" / "1", repo / "churn" / "3")
    (repo / "churn" / "7").mkdir()  # a version folder without a model file is not a version
    loaded = load_repository(repo, {"churn": config})
    assert loaded.versions() == {"churn": ["2", "3"]}
    x = messy_inputs(3)
    out = loaded.models["churn"].versions["3"].runner.run(x)
    expected = ort_outputs(model_repo, "1", x)
    np.testing.assert_allclose(out["probabilities"], expected["probabilities"], rtol=1e-6)
    assert out["label"].tolist() == expected["label"].tolist()


def test_specific_versions_report_the_missing_one_unavailable(repo, churn_recipe):
    loaded = load_repository(repo, {"churn": model_config(churn_recipe, ["1", "4"])})
    assert loaded.versions() == {"churn": ["1"]}
    assert loaded.index() == [
        {"name": "churn", "version": "1", "state": "READY", "reason": ""},
        {"name": "churn", "version": "4", "state": "UNAVAILABLE", "reason": "not found in the model repository"},
    ]


def test_column_names_and_classes_come_from_the_onnx_file_without_given_columns(repo, churn_recipe, config):
    from framework.signature import model_signature

    model = load_repository(repo, {"churn": config}).models["churn"]
    columns = model_signature(churn_recipe).columns
    assert model.columns == columns
    runner = model.versions["2"].runner
    assert runner.columns == columns  # the exporter's metadata: the raw columns, in input order
    assert runner.classes == churn_pipeline().class_names == ["0", "1"]
    assert model.metadata()["parameters"] == {"classes": ["0", "1"]}


def renamed(tensors, old: str, **change) -> tuple[ModelTensor, ...]:
    return tuple(replace(t, **change) if t.name == old else t for t in tensors)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: replace(c, name="other"), "the model config names the model 'other' but its folder is 'churn' (Triton requires them equal)"),
        (lambda c: replace(c, platform="tensorflow_savedmodel"),
         "platform: 'tensorflow_savedmodel' cannot be served here; supported: onnxruntime_onnx, pytorch_libtorch"),
        (
            lambda c: replace(c, input=renamed(c.input, "tenure_months", name="tenure")),
            "the model's inputs ['contract', 'monthly_charges', 'num_products', 'payment_method', 'senior_citizen', "
            "'support_calls', 'tenure_months', 'total_charges'] differ from the model config's ['contract', "
            "'monthly_charges', 'num_products', 'payment_method', 'senior_citizen', 'support_calls', 'tenure', 'total_charges']",
        ),
        (
            lambda c: replace(c, input=renamed(c.input, "contract", data_type="TYPE_FP32")),
            "tensor 'contract' is BYTES in the model but FP32 in the model config",
        ),
        (
            lambda c: replace(c, output=renamed(c.output, "label", data_type="TYPE_FP32")),
            "tensor 'label' is BYTES in the model but FP32 in the model config",
        ),
    ],
    ids=["name", "platform", "input-name", "input-datatype", "output-datatype"],
)
def test_broken_repositories_say_what_is_wrong(repo, config, change, message):
    with pytest.raises(MlopsError, match=re.escape(message)):
        load_repository(repo, {"churn": change(config)})


def test_no_versions_or_no_repository(tmp_path, config):
    (tmp_path / "repo" / "churn").mkdir(parents=True)
    with pytest.raises(MlopsError, match=re.escape("no version folder with model.onnx (e.g. ") + ".*run `mlops apply` first"):
        load_repository(tmp_path / "repo", {"churn": config})
    with pytest.raises(MlopsError, match=re.escape("no version folder with model.onnx (e.g. ") + ".*run `mlops apply` first"):
        load_repository(tmp_path / "repo", {"absent-model": replace(config, name="absent-model")})
    with pytest.raises(MlopsError, match=re.escape("no model repository here: run `mlops apply` first")):
        load_repository(tmp_path / "absent", {"churn": config})


def test_torchscript_model_pt(tmp_path):
    """serving.format torchscript: model.pt on TorchScript with the raw-column contract
    (forward() takes one argument per column, List[str] for a category; it returns the
    probabilities and the labels, bound as probabilities__0 and label__1), through
    tritonclient (binary and JSON) and curl's row form."""
    import httpx
    import torch
    import tritonclient.http as triton

    from framework.runtime.training.export import export_torchscript
    from framework.runtime.serving.host import EmbeddedServer, build_app
    from framework.runtime.serving.protocol import request_inputs

    recipe = api.load_recipe("churn", overrides=["serving.format=torchscript"], project=REPO).recipe
    pipeline = churn_pipeline()
    net = train_net(pipeline, seed=0, steps=30, hidden_sizes=[8])
    export_torchscript(net, pipeline, tmp_path / "repo" / "churn" / "1" / "model.pt")
    write_config(recipe, tmp_path / "repo" / "churn")
    app = build_app(recipe, tmp_path / "repo", tmp_path / "state", log_sample_rate=0)
    frame = rows(6, seed=1)
    frame.loc[0, "total_charges"] = np.nan  # imputed in the module
    frame.loc[1, "contract"] = "weekly"  # unseen: no category
    frame.loc[2, "payment_method"] = None  # null: no category
    x = pipeline.raw_inputs(frame)
    with torch.no_grad():
        probabilities = net.eval()(torch.from_numpy(pipeline.transform(frame))).numpy()
    labels = [pipeline.class_names[i] for i in probabilities.argmax(axis=1)]
    assert set(labels) == {"0", "1"}
    with EmbeddedServer(app) as server, triton.InferenceServerClient(server.url) as client:
        for binary in (True, False):
            tensors = []
            for name, array in x.items():
                if not binary and array.dtype != object:  # JSON has no NaN: send the row without nulls
                    array = np.nan_to_num(array, nan=float(pipeline.medians[name]))
                tensor = triton.InferInput(name, list(array.shape), "BYTES" if array.dtype == object else "FP32")
                tensor.set_data_from_numpy(array, binary_data=binary)
                tensors.append(tensor)
            result = client.infer("churn", tensors)
            np.testing.assert_allclose(result.as_numpy("probabilities__0"), probabilities, rtol=1e-5, atol=1e-6)
            assert text(result.as_numpy("label__1"))[:, 0].tolist() == labels
        metadata = client.get_model_metadata("churn")
        assert metadata["platform"] == "pytorch_libtorch"
        assert [(t["name"], t["datatype"]) for t in metadata["inputs"]] == [
            (c, "BYTES" if c in pipeline.categorical else "FP32") for c in pipeline.features
        ]
        assert [(t["name"], t["datatype"]) for t in metadata["outputs"]] == [("probabilities__0", "FP32"), ("label__1", "BYTES")]
        assert metadata["parameters"] == {"classes": ["0", "1"]}
        with httpx.Client(base_url=f"http://{server.url}", timeout=30) as http:
            body = [{c: (None if v != v else v) for c, v in row.items()}
                    for row in frame[list(pipeline.features)].astype(object).to_dict("records")]
            response = http.post("/v2/models/churn/infer", json=body)
            assert response.status_code == 200, response.text
            outputs = {o["name"]: o for o in response.json()["outputs"]}
            np.testing.assert_allclose(np.reshape(outputs["probabilities__0"]["data"], (6, 2)), probabilities, rtol=1e-5, atol=1e-6)
            assert outputs["label__1"]["data"] == labels and outputs["label__1"]["datatype"] == "BYTES"
            response = http.post("/v2/models/churn/infer", json={"inputs": request_inputs(x)})
            assert response.status_code == 200 and response.json()["outputs"][1]["data"] == labels


def test_serving_imports_no_torch_ray_or_mlflow(model_repo):
    code = (
        "import sys; from framework.runtime.serving.host import build_app; "
        f"app = build_app('generated/churn/dev/recipe.resolved.yaml', {str(model_repo)!r}, {str(model_repo.parent / 'st')!r}); "
        "print(sorted(m for m in ('torch', 'ray', 'mlflow', 'pandas', 'evidently') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
