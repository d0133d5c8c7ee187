"""`apply --target ray --address URL` against a real Ray head started on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from framework.runtime.submit import UPLOAD_EXCLUDES, job_spec
from tests.conftest import run_cli

pytestmark = pytest.mark.slow
RAY = str(Path(sys.executable).with_name("ray"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def ray_head(churn_project: Path):
    dashboard = _free_port()
    # As from an activated venv: the job's `python` is the one with the framework installed.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**os.environ, "PATH": path, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    subprocess.run(
        [RAY, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={_free_port()}", "--num-cpus=2",
         "--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard}", "--disable-usage-stats"],
        env=env, check=True, capture_output=True, timeout=120,
    )
    try:
        yield f"http://127.0.0.1:{dashboard}"
    finally:
        subprocess.run([RAY, "stop", "--force"], env=env, capture_output=True, timeout=120)


def test_the_job_is_the_generated_rayjob(churn_project: Path) -> None:
    from framework import api

    api.generate(["churn"])
    recipe = api.load_recipe("churn").recipe
    spec = job_spec(churn_project, churn_project / "generated" / "churn" / "dev", churn_project / ".mlops", recipe)
    assert spec["entrypoint"] == "python -m framework.runtime.train generated/churn/dev/recipe.resolved.yaml"
    assert spec["runtime_env"]["working_dir"] == str(churn_project)
    assert spec["runtime_env"]["excludes"] == UPLOAD_EXCLUDES
    assert spec["runtime_env"]["env_vars"]["RAY_USAGE_STATS_ENABLED"] == "0"
    assert spec["runtime_env"]["env_vars"]["MLOPS_STATE_DIR"] == str((churn_project / ".mlops").resolve())


def test_target_ray_needs_an_address(churn_project: Path) -> None:
    result = run_cli("apply", "churn", "--target", "ray")
    assert result.exit_code == 1
    assert "--target: --target ray needs --address URL" in result.stderr


def test_apply_submits_to_a_real_ray_head_and_registers(churn_project: Path, ray_head: str) -> None:
    result = run_cli("apply", "churn", "--target", "ray", "--address", ray_head)
    assert result.exit_code == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "submitted Ray job" in result.stdout
    assert "model version 1 (candidate), gates passed" in result.stdout  # the job's own log, streamed
    assert "churn (dev): Ray job SUCCEEDED" in result.stdout
    assert (churn_project / ".mlops" / "model_repository" / "churn" / "1" / "model.onnx").is_file()


def test_an_unreachable_cluster_is_a_clear_error(churn_project: Path) -> None:
    result = run_cli("apply", "churn", "--target", "ray", "--address", f"http://127.0.0.1:{_free_port()}")
    assert result.exit_code == 1
    assert "--address: cannot reach the Ray job API at http://127.0.0.1:" in result.stderr
