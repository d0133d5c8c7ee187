"""The real Triton Inference Server loads the model repository `apply` fills.

The repository is laid out as training's local apply lays it (runtime/training/run.py
fill_model_repository, with serving/model_config.py write_config: the config.pbtxt
`mlops generate` commits under generated/churn/<env>/triton/), for two versions. Triton
2.51 (nvidia-pytriton's build, `make tools`) ships only the python backend, so the
platform is swapped for a python model running the same ONNX file
(tests/serving/tritonserver.py); every other field stays as generated, and Triton runs
with auto-complete off, so it reads exactly what we wrote. Then: the model and both
versions are READY, the configuration Triton reads back carries every field of our
ModelConfig with our values, and its answers (one request, and concurrent ones its dynamic
batcher groups) are ONNX Runtime's.
"""

from __future__ import annotations

import dataclasses
import json
import urllib.request

import numpy as np
import pytest

from framework.contracts.triton import ModelConfig, model_config
from tests.conftest import REPO
from tests.serving.conftest import VERSIONS, inputs, ort_outputs, text, triton_inputs
from tests.serving.tritonserver import TritonServer, as_python_models, install

pytestmark = pytest.mark.slow

FOUND = install()
if FOUND is None:
    pytest.skip("Triton is not installed: `make tools` installs nvidia-pytriton in .tools/triton-venv",
                allow_module_level=True)


@pytest.fixture(scope="module")
def filled(tmp_path_factory, model_repo, churn_recipe):
    """<state>/model_repository as apply fills it, versions 1 and 2 of the served model."""
    from framework.runtime.training.run import fill_model_repository

    state = tmp_path_factory.mktemp("state")
    for version in VERSIONS:
        repository = fill_model_repository(churn_recipe, state, version, model_repo / "churn" / version / "model.onnx")
    return repository


@pytest.fixture(scope="module")
def triton(tmp_path_factory, filled):
    workdir = tmp_path_factory.mktemp("triton")
    with TritonServer(FOUND, as_python_models(filled, workdir / "repository"), workdir) as server:
        yield server


def get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read()


def expected_config(config: ModelConfig) -> dict:
    """Our ModelConfig in Triton's JSON field names, with the python backend's two swaps."""
    policy = config.version_policy
    choice = {"latest": {"num_versions": policy.num_versions}, "all": {},
              "specific": {"versions": list(policy.versions)}}[policy.choice]

    def tensors(specs) -> list[dict]:
        return [{"name": t.name, "data_type": t.data_type, "dims": list(t.dims)} for t in specs]

    return {
        "name": config.name,
        "backend": "python",
        "max_batch_size": config.max_batch_size,
        "input": tensors(config.input),
        "output": tensors(config.output),
        "default_model_filename": "model.py",
        "dynamic_batching": {"preferred_batch_size": list(config.dynamic_batching.preferred_batch_size),
                             "max_queue_delay_microseconds": config.dynamic_batching.max_queue_delay_microseconds},
        "instance_group": [{"count": g.count, "kind": g.kind} for g in config.instance_group],
        "version_policy": {policy.choice: choice},
        "model_warmup": [{"name": w.name, "batch_size": w.batch_size,
                          "inputs": {key: {"data_type": i.data_type, "dims": list(i.dims), "zero_data": i.zero_data}
                                     for key, i in w.inputs}}
                         for w in config.model_warmup],
    }


def cut(value, shape):
    """`value` (Triton's JSON) reduced to the keys of `shape` (ours): Triton adds its defaults."""
    if isinstance(shape, dict) and isinstance(value, dict):
        return {k: cut(value.get(k), v) for k, v in shape.items()}
    if isinstance(shape, list) and isinstance(value, list) and shape and isinstance(shape[0], dict):
        return [cut(v, s) for v, s in zip(value, shape)] + value[len(shape):]
    return value


def test_the_filled_repository_carries_the_generated_config(filled, churn_recipe):
    committed = REPO / "generated" / "churn" / "dev" / "triton" / "churn" / "config.pbtxt"
    assert (filled / "churn" / "config.pbtxt").read_text() == committed.read_text()
    assert sorted(p.name for p in (filled / "churn").iterdir() if p.is_dir()) == list(VERSIONS)


def test_the_model_and_both_versions_are_ready(triton):
    assert get(f"{triton.base}/v2/models/churn/ready")[0] == 200
    for version in VERSIONS:
        assert get(f"{triton.base}/v2/models/churn/versions/{version}/ready")[0] == 200
    index = json.loads(urllib.request.urlopen(urllib.request.Request(
        f"{triton.base}/v2/repository/index", data=b"{}", method="POST"), timeout=10).read())
    assert sorted((row["version"], row["state"]) for row in index) == [(v, "READY") for v in VERSIONS]


def test_triton_reads_back_every_field_we_set(triton, churn_recipe):
    config = model_config(churn_recipe)
    want = expected_config(config)
    # every field of our ModelConfig is compared (platform is the one swapped for `backend`)
    assert {f.name for f in dataclasses.fields(ModelConfig)} == (set(want) - {"backend"}) | {"platform"}
    got = json.loads(get(f"{triton.base}/v2/models/churn/config")[1])
    assert got["platform"] == ""
    assert cut(got, want) == want


@pytest.fixture(scope="module")
def client(triton):
    import tritonclient.http as http

    with http.InferenceServerClient(f"127.0.0.1:{triton.port}", concurrency=8) as c:
        yield c


@pytest.mark.parametrize("version", [None, "1"])
def test_an_inference_returns_onnx_runtimes_answer(client, filled, version):
    tensors = inputs(5, seed=3)
    result = client.infer("churn", triton_inputs(tensors), model_version=version or "")
    expected = ort_outputs(filled, version or VERSIONS[-1], tensors)
    assert result.get_response()["model_version"] == (version or VERSIONS[-1])
    np.testing.assert_allclose(result.as_numpy("probabilities"), expected["probabilities"], rtol=1e-5, atol=1e-6)
    assert (text(result.as_numpy("label")) == text(expected["label"])).all()


def test_concurrent_requests_batched_by_triton_answer_each_its_rows(client, filled):
    requests = [inputs(1 + i % 3, seed=10 + i) for i in range(24)]
    pending = [client.async_infer("churn", triton_inputs(t, binary=False)) for t in requests]  # 8 at a time
    results = [p.get_result() for p in pending]
    for tensors, result in zip(requests, results):
        expected = ort_outputs(filled, VERSIONS[-1], tensors)
        np.testing.assert_allclose(result.as_numpy("probabilities"), expected["probabilities"], rtol=1e-5, atol=1e-6)
        assert (text(result.as_numpy("label")) == text(expected["label"])).all()
