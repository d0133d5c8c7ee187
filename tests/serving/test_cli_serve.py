"""`mlops serve RECIPE`: serves the local model repository until Ctrl-C (exit 0), and says
what is missing when it cannot."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tritonclient.http as triton

from framework.errors import MlopsError
from tests.conftest import copy_project, run_cli
from tests.serving.conftest import inputs, ort_outputs, text, triton_inputs

MLOPS = str(Path(sys.executable).with_name("mlops"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(project: Path, port: int) -> subprocess.Popen:
    """`mlops serve churn` in its own session (as a shell job), output unbuffered."""
    return subprocess.Popen(
        [MLOPS, "serve", "churn", "--port", str(port)], cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True,
    )


def _infer_unversioned(port: int, x: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """tritonclient infer on `churn` without a version (named columns), once the server is ready."""
    with triton.InferenceServerClient(f"127.0.0.1:{port}") as client:
        deadline = time.monotonic() + 10
        while not client.is_server_ready():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        result = client.infer("churn", triton_inputs(x))
        return {"probabilities": result.as_numpy("probabilities"), "label": text(result.as_numpy("label"))}


def _assert_same(got: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    np.testing.assert_allclose(got["probabilities"], expected["probabilities"], rtol=1e-6)
    assert text(got["label"]).tolist() == text(expected["label"]).tolist()


@pytest.fixture()
def project(tmp_path, monkeypatch):
    root = copy_project(tmp_path, ("recipes",))
    monkeypatch.chdir(root)
    return root


def test_serve_until_ctrl_c_exits_0_and_leaves_nothing(project, model_repo):
    shutil.copytree(model_repo, project / ".mlops" / "model_repository")
    port = free_port()
    process = _serve(project, port)
    try:
        first = process.stdout.readline()
        assert first == f"serving churn (versions 1, 2) at http://127.0.0.1:{port}/v2/models/churn\n"
        x = inputs(2)
        _assert_same(_infer_unversioned(port, x), ort_outputs(model_repo, "2", x))
        # curl's form: rows keyed by column, a null number, an unseen category; a label back
        import httpx

        row = {"tenure_months": 5, "monthly_charges": 70.0, "total_charges": None, "support_calls": 2,
               "num_products": 1, "senior_citizen": 0, "contract": "weekly", "payment_method": "card"}
        response = httpx.post(f"http://127.0.0.1:{port}/v2/models/churn/infer", json=[row], timeout=10)
        assert response.status_code == 200, response.text
        label = next(o for o in response.json()["outputs"] if o["name"] == "label")
        assert label["datatype"] == "BYTES" and label["shape"] == [1, 1] and label["data"][0] in ("0", "1")
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert out.endswith("stopped serving churn (dev)\n")
    assert "Traceback" not in err
    with pytest.raises(ProcessLookupError):  # the whole session (any child) is gone
        os.killpg(process.pid, 0)
    with socket.socket() as s:  # and the port is free again
        s.bind(("127.0.0.1", port))


def test_serve_without_a_model_repository_says_run_apply(project):
    result = run_cli("serve", "churn")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"serving: no model 'churn' in {project / '.mlops' / 'model_repository'} and no version of 'churn' has alias "
        f"champion or candidate in sqlite:///{project / '.mlops' / 'mlflow.db'}: run `mlops apply churn` first"
    )
    assert not (project / ".mlops" / "mlflow.db").exists()  # nothing created by asking


def test_serve_on_a_taken_port_says_so(project, model_repo):
    shutil.copytree(model_repo, project / ".mlops" / "model_repository")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("serve", "churn", "--port", str(port))
    assert result.exit_code == 1
    assert result.stderr.strip() == f"--port: cannot listen on 127.0.0.1:{port}: Address already in use; pick another with --port"


def test_serve_an_llm_recipe_says_what_is_missing(project):
    result = run_cli("serve", "support_assistant", "--port", str(free_port()))
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"rag.vector_store.path: no collection 'support-assistant' in {project / '.mlops' / 'vectors' / 'support-assistant'}: "
        "index the documents first (`mlops apply` or `mlops eval` of the recipe, or python -m framework.runtime.rag.index)"
    )

    from framework import api
    from framework.runtime.rag.local import generation_server

    recipe = api.load_recipe("support_assistant", overrides=["model.cpu_fallback=null"], project=project).recipe
    with pytest.raises(MlopsError) as caught:
        with generation_server(recipe, project / ".mlops"):
            pass
    assert str(caught.value.problems[0]) == (
        "model.cpu_fallback: serving.backend vllm cannot run here: no CUDA GPU on this machine; set model.cpu_fallback "
        "(a local model folder, a Hub id in the local cache, or tiny-random) to serve on CPU with transformers, "
        "or rag.llm_endpoint to use a running server"
    )


def _registry(project: Path, champion: str, candidate: str | None = None, rejected: str | None = None) -> None:
    """Versions 1 and 2 of 'churn' registered from the model repository, aliases as given."""
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{project / '.mlops' / 'mlflow.db'}")
    client.create_registered_model("churn")
    for version in ("1", "2"):
        client.create_model_version("churn", source=str(project / ".mlops" / "model_repository" / "churn" / version))
    for alias, version in (("champion", champion), ("candidate", candidate), ("rejected", rejected)):
        if version is not None:
            client.set_registered_model_alias("churn", alias, version)


def test_serve_sends_unversioned_requests_to_the_champion(project, model_repo):
    """After a rollback the newest version on disk is the rejected candidate: requests
    without a version must reach the registry's champion, and only it is loaded."""
    shutil.copytree(model_repo, project / ".mlops" / "model_repository")
    _registry(project, champion="1", candidate="2", rejected="2")
    port = free_port()
    process = _serve(project, port)
    try:
        assert process.stdout.readline() == f"serving churn (versions 1) at http://127.0.0.1:{port}/v2/models/churn\n"
        assert process.stdout.readline() == "requests without a version: champion version 1 answers\n"
        x = inputs(2)
        _assert_same(_infer_unversioned(port, x), ort_outputs(model_repo, "1", x))
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)
    assert process.returncode == 0


def test_serve_carries_on_a_canary_in_progress(project, model_repo):
    """A candidate neither promoted nor rejected (apply stopped mid-rollout): both versions
    load, the canary sends its recorded share to the candidate, the header forces it."""
    from framework import api
    from framework.runtime.rollout import state as st
    from framework.contracts.rollout_record import new_record

    shutil.copytree(model_repo, project / ".mlops" / "model_repository")
    _registry(project, champion="1", candidate="2")
    record = new_record(api.load_recipe("churn", project=project).recipe, champion="1", candidate="2", model="churn")
    record.step, record.weight = 2, 25.0
    st.write_state(project / ".mlops" / "rollouts" / "churn" / "dev.json", record)
    port = free_port()
    process = _serve(project, port)
    try:
        assert process.stdout.readline() == f"serving churn (versions 1, 2) at http://127.0.0.1:{port}/v2/models/churn\n"
        assert process.stdout.readline() == (
            "requests without a version: champion version 1 answers, rollout in progress: canary at 25% for version 2\n"
        )
        x = inputs(1)
        _infer_unversioned(port, x)
        import httpx

        from framework.runtime.serving.protocol import request_inputs

        body = {"inputs": request_inputs(x)}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
            answered = [http.post("/v2/models/churn/infer", json=body).json()["model_version"] for _ in range(400)]
            forced = http.post("/v2/models/churn/infer", json=body, headers={"x-mlops-candidate": "true"}).json()
            metrics = http.get("/metrics").text
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)
    assert process.returncode == 0
    assert 60 <= answered.count("2") <= 140  # 25% of 400 = 100, sd 8.7
    assert forced["model_version"] == "2"
    assert 'mlops_rollout_weight{model="churn",version="2"} 25.0' in metrics
