"""`apply --target ray --address URL` against a real Ray head started on 127.0.0.1."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from framework.runtime.submit import UPLOAD_EXCLUDES, job_spec, snapshot
from tests.conftest import run_cli
from tests.mlflow_server import unique_name
from tests.ray_head import free_port
from tests.ray_head import ray_head as start_ray_head

pytestmark = pytest.mark.slow


@pytest.fixture
def ray_head(churn_project: Path):
    with start_ray_head() as url:
        yield url


def test_the_job_is_the_generated_rayjob(churn_project: Path) -> None:
    from framework import api

    api.generate(["churn"])
    recipe = api.load_recipe("churn").recipe
    env_dir = churn_project / "generated" / "churn" / "dev"
    spec = job_spec(churn_project, env_dir, churn_project / ".mlops", recipe)
    assert spec["entrypoint"] == "python -m framework.runtime.training generated/churn/dev/recipe.resolved.yaml"
    assert spec["runtime_env"]["working_dir"] == str(churn_project)
    assert spec["runtime_env"]["excludes"] == UPLOAD_EXCLUDES
    assert spec["runtime_env"]["env_vars"]["RAY_USAGE_STATS_ENABLED"] == "0"
    assert "MLOPS_STATE_DIR" not in spec["runtime_env"]["env_vars"]  # the cluster's own disk
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=churn_project, capture_output=True, text=True).stdout.strip()
    assert spec["runtime_env"]["env_vars"]["MLOPS_GIT_COMMIT"] == head  # the upload has no .git
    shared = job_spec(churn_project, env_dir, churn_project / ".mlops", recipe, head_shares_disk=True)
    assert shared["runtime_env"]["env_vars"]["MLOPS_STATE_DIR"] == str((churn_project / ".mlops").resolve())


def test_the_snapshot_is_what_ray_would_upload_copied_once(churn_project: Path) -> None:
    with (churn_project / ".gitignore").open("a") as ignore:  # the user's own, plus a folder of theirs
        ignore.write("scratch/\n")
    (churn_project / "apply.log").write_text("the client's own output")
    (churn_project / "scratch").mkdir()
    (churn_project / "scratch" / "big.bin").write_bytes(b"0" * 1000)
    (churn_project / ".mlops").mkdir()
    (churn_project / ".mlops" / "mlflow.db").write_bytes(b"sqlite")
    (churn_project / "data" / "notes.rayignored").write_text("x")
    (churn_project / "data" / ".rayignore").write_text("*.rayignored\n")
    with snapshot(churn_project) as copy:
        files = sorted(p.relative_to(copy).as_posix() for p in copy.rglob("*") if p.is_file())
        (churn_project / "data" / "churn.csv").write_text("changed after the snapshot")  # the copy keeps its bytes
        assert (copy / "data" / "churn.csv").read_text() != "changed after the snapshot"
    assert not copy.exists()  # removed afterwards
    assert "apply.log" not in files and "notebook.log" not in files
    assert not [f for f in files if f.startswith(("scratch/", ".mlops/", ".venv/", ".git/"))]
    assert "data/notes.rayignored" not in files
    assert {"data/churn.csv", "pyproject.toml", "recipes/churn.yaml", ".gitignore",
            "generated/churn/dev/recipe.resolved.yaml", "generated/churn/dev/ray/rayjob.yaml"} <= set(files)


def test_target_ray_refuses_a_store_the_cluster_cannot_reach(churn_project: Path) -> None:
    result = run_cli("apply", "churn", "--target", "ray", "--address", "http://127.0.0.1:1")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1].startswith(
        "tracking.uri: --target ray runs the job on the cluster, which cannot write the embedded store "
        ".mlops/mlflow.db on this machine: set tracking.uri to an MLflow server the cluster reaches")
    assert "pass --head-shares-disk when the head sees this project at the same path" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_cluster_of_another_ray_release_is_refused() -> None:
    from importlib.metadata import version
    from types import SimpleNamespace

    from framework.errors import MlopsError
    from framework.runtime.submit import check_version

    check_version(SimpleNamespace(_server_ray_version=version("ray")), "http://head:8265")
    with pytest.raises(MlopsError, match=r"--address: the Ray cluster at http://head:8265 runs Ray 2\.9\.3 but this "
                                         r"project runs Ray 2\.60\.\d+: use a cluster of Ray 2\.60"):
        check_version(SimpleNamespace(_server_ray_version="2.9.3"), "http://head:8265")


def test_target_ray_needs_an_address(churn_project: Path) -> None:
    result = run_cli("apply", "churn", "--target", "ray")
    assert result.exit_code == 1
    assert "--target: --target ray needs --address URL" in result.stderr


def test_apply_submits_to_a_real_ray_head_and_registers(churn_project: Path, ray_head: str) -> None:
    result = run_cli("apply", "churn", "--target", "ray", "--address", ray_head, "--head-shares-disk")
    assert result.exit_code == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "submitted Ray job" in result.stdout
    assert "model version 1 (candidate), gates passed" in result.stdout  # the job's own log, streamed
    assert "churn (dev): Ray job SUCCEEDED" in result.stdout
    assert (churn_project / ".mlops" / "model_repository" / "churn" / "1" / "model.onnx").is_file()


def test_an_unreachable_cluster_is_a_clear_error(churn_project: Path) -> None:
    result = run_cli("apply", "churn", "--target", "ray", "--address", f"http://127.0.0.1:{free_port()}", "--head-shares-disk")
    assert result.exit_code == 1
    assert "--address: cannot reach the Ray job API at http://127.0.0.1:" in result.stderr


# --- a head that cannot see this machine's disk -------------------------------------------
@pytest.fixture
def isolated_ray_head(churn_project: Path):
    """A Ray head in its own mount namespace with a tmpfs over the project folder: like a
    remote cluster, it sees only what the job is sent."""
    with start_ray_head(hide=churn_project) as url:
        yield url


def test_a_head_that_cannot_see_the_project_trains_from_what_it_was_sent(
    churn_project: Path, mlflow_server: str, isolated_ray_head: str
) -> None:
    """The everyday case that broke: a real project (.gitignore and all) whose root gets
    the command's own log while the job runs; the job writes only to the tracking server,
    and the client fetches the registered model from it."""
    import mlflow

    recipe = churn_project / "recipes" / "churn.yaml"  # the fixture is a user's checkout: git, .gitignore, .venv
    name = unique_name("churn")  # the server is shared: this test's own model and experiment
    recipe.write_text(recipe.read_text() + f"tracking:\n  uri: {mlflow_server}\n  registered_model: {name}\n"
                      f"  experiment: {name}\n")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    with (churn_project / "apply.log").open("w") as log:  # `mlops apply ... > apply.log` in the project root
        done = subprocess.run([str(Path(sys.executable).with_name("mlops")), "apply", "churn", "--target", "ray",
                               "--address", isolated_ray_head], cwd=churn_project, env=env, stdout=log,
                              stderr=subprocess.STDOUT, timeout=900)
    output = (churn_project / "apply.log").read_text()
    assert done.returncode == 0, output[-4000:]
    assert "Failed to download runtime_env" not in output
    assert "churn (dev): Ray job SUCCEEDED" in output
    client = mlflow.MlflowClient(mlflow_server)
    (version,) = client.search_model_versions(f"name='{name}'")
    assert version.version == "1"
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=churn_project, capture_output=True, text=True).stdout.strip()
    assert client.get_run(version.run_id).data.tags["mlops.git_commit"] == head  # handed over: the upload has no .git
    assert not (churn_project / ".mlops" / "runs").exists()  # the job wrote nothing on this machine's disk
    assert (churn_project / ".mlops" / "model_repository" / "churn" / "1" / "model.onnx").is_file()  # fetched
