"""What a pipeline run needs around it, each the real thing where one can run here:

- a checkout: a copy of the project, committed to its own git repository (the commit is
  the run's `github.sha`), with a `.gitignore` like every repository's;
- a Python environment for the steps: a fresh venv that sees the project's installed
  packages (a .pth line), so the workflow's own `pip install -e .` installs the
  checkout into it without touching the project's venv;
- the team's tracking server: the session's `mlflow server` (tests/conftest.py), shared
  with other tests: the checkout's recipe names its own model and experiment;
- the Ray cluster of `vars.RAY_ADDRESS`: a real `ray start --head` with token auth, the
  token given to the workflow as `secrets.RAY_AUTH_TOKEN`;
- the staging and production clusters: the fake Kubernetes API server the apply tests
  use (tests/runtime/fake_kube_api.py), its kubeconfig as `secrets.KUBECONFIG`.
"""

from __future__ import annotations

import os
import secrets as random_secrets
import shutil
import site
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.ray_head import _node_ports, free_ports, stop_processes_under

BIN = Path(sys.executable).parent
# Not part of a checkout: environments, tools, local state, caches, the tests.
NOT_CHECKED_OUT = (".git", ".venv", "venv", ".tools", ".mlops", ".pytest_cache", "__pycache__", "*.egg-info", "tests")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def git(checkout: Path, *args: str) -> str:
    done = subprocess.run(["git", "-c", "user.name=harness", "-c", "user.email=harness@example.com", *args],
                          cwd=checkout, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def make_checkout(root: Path) -> Path:
    """The project as a clone would have it, in a git repository of its own."""
    shutil.copytree(REPO, root, ignore=shutil.ignore_patterns(*NOT_CHECKED_OUT))
    shutil.copy(REPO / ".gitignore", root / ".gitignore")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "the project")
    return root


def commit(checkout: Path, message: str) -> str:
    git(checkout, "add", "-A")
    git(checkout, "commit", "-q", "-m", message)
    return git(checkout, "rev-parse", "HEAD")


def step_venv(folder: Path) -> Path:
    """A venv whose interpreter sees this environment's packages but installs into its own."""
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True, timeout=120)
    target = folder / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    (target / "_project_packages.pth").write_text("\n".join(site.getsitepackages()) + "\n", encoding="utf-8")
    return folder / "bin"


@pytest.fixture(scope="package")
def ray_cluster(tmp_path_factory):
    """(job API URL, auth token) of a Ray head with token auth."""
    token = random_secrets.token_hex(16)
    dashboard = free_port()
    home = tmp_path_factory.mktemp("ray-home")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "HOME": str(home),
           "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token, "RAY_USAGE_STATS_ENABLED": "0"}
    ray = str(BIN / "ray")
    temp = tempfile.mkdtemp(prefix="rayhead-", dir="/tmp")  # its own: stopped without touching other Rays
    try:
        subprocess.run(
            [ray, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={free_port()}", "--num-cpus=2",
             "--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard}",
             "--disable-usage-stats", f"--temp-dir={temp}",
             *_node_ports(free_ports(6))],  # not Ray's defaults: another Ray may hold them
            env=env, check=True, capture_output=True, timeout=180,
        )
        yield f"http://127.0.0.1:{dashboard}", token
    finally:
        stop_processes_under(temp)


@pytest.fixture(scope="package")
def clusters():
    from tests.runtime.fake_kube_api import FakeKubeApi

    api = FakeKubeApi().start()
    try:
        yield api
    finally:
        api.stop()
