"""The Ray Serve host: `framework.runtime.serve:app` (the generated serve_config's import
path) on an embedded Ray, answering tritonclient like the embedded host."""

from __future__ import annotations

import socket
import time

import numpy as np
import pytest
import tritonclient.http as triton
import yaml

from framework.targets.ray import SERVE_DEPLOYMENT, SERVE_IMPORT_PATH
from tests.conftest import REPO
from tests.serving.conftest import ort_outputs

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_generated_serve_config_names_this_builder():
    config = yaml.safe_load((REPO / "tests" / "golden" / "churn-ray-serve" / "ray" / "serve_config.yaml").read_text())
    (application,) = config["applications"]
    assert application["import_path"] == SERVE_IMPORT_PATH == "framework.runtime.serve:app"
    assert [d["name"] for d in application["deployments"]] == [SERVE_DEPLOYMENT]
    assert set(application["args"]) == {"recipe"}


def test_ray_serve_answers_like_onnxruntime(tmp_path, model_repo, monkeypatch):
    import ray
    from ray import serve

    from framework.runtime.serve import app as build

    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    port = free_port()
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        application = build({
            "recipe": str(REPO / "generated" / "churn" / "dev" / "recipe.resolved.yaml"),
            "model_repository": str(model_repo),
            "state_dir": str(tmp_path / "state"),
        })
        serve.run(application, name="churn", route_prefix="/", blocking=False)
        x = np.random.default_rng(5).normal(size=(4, 13)).astype(np.float32)
        with triton.InferenceServerClient(f"127.0.0.1:{port}") as client:
            deadline = time.monotonic() + 120
            while True:
                try:
                    if client.is_model_ready("churn"):
                        break
                except Exception:  # the proxy answers before the replica is up
                    pass
                assert time.monotonic() < deadline, "Ray Serve did not become ready"
                time.sleep(0.5)
            for binary in (True, False):
                tensor = triton.InferInput("features", [4, 13], "FP32")
                tensor.set_data_from_numpy(x, binary_data=binary)
                requested = [triton.InferRequestedOutput("probabilities", binary_data=binary)]
                result = client.infer("churn", [tensor], outputs=requested)
                np.testing.assert_allclose(result.as_numpy("probabilities"), ort_outputs(model_repo, "2", x), rtol=1e-6)
            result = client.infer("churn", [tensor], model_version="1")
            np.testing.assert_allclose(result.as_numpy("probabilities"), ort_outputs(model_repo, "1", x), rtol=1e-6)
            assert client.get_model_metadata("churn")["versions"] == ["1", "2"]
        status = serve.status().applications["churn"]
        assert list(status.deployments) == [SERVE_DEPLOYMENT]
    finally:
        serve.shutdown()
        ray.shutdown()
