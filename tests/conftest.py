"""Shared fixtures: a throwaway copy of the project, and the CLI run in-process."""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

REPO = Path(__file__).resolve().parents[1]


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str
    exception: BaseException | None


def run_cli(*args: str) -> CliResult:
    from framework.cli import app

    result = CliRunner().invoke(app, list(args))
    return CliResult(result.exit_code, result.stdout, result.stderr, result.exception)


def copy_project(tmp_path: Path, folders: tuple[str, ...]) -> Path:
    """A copy of the repository's settings and the given folders, under tmp_path/proj."""
    root = tmp_path / "proj"
    root.mkdir()
    for name in folders:
        shutil.copytree(REPO / name, root / name)
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    return root


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the repository's recipes and settings (and the Feast repository that
    churn_features names, which validation reads); the working directory."""
    root = copy_project(tmp_path, ("recipes", "schemas", "feature_repo"))
    monkeypatch.chdir(root)
    return root


def tree_snapshot(root: Path, *, with_cache: bool = False) -> dict[str, str]:
    """Every file under root with a hash of its bytes: equal snapshots, nothing written.
    The parse cache (.mlops/cache/) is left out unless asked for: any command that composed
    a recipe may keep its answer there, refused or not, and whether it does depends on how
    recently the inputs were written (framework/recipe/parse_cache.py, RACY_NS)."""
    cache = root / ".mlops" / "cache"
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and (with_cache or not p.is_relative_to(cache))
    }


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--update-golden", action="store_true", help="rewrite tests/golden from the current output")


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The team's tracking server: a real `mlflow server` on 127.0.0.1 (its URL), one for
    the whole session, as starting one takes 10-20 s. Shared, so a test names its own
    experiments and registered models (tests.mlflow_server.unique_name) and never assumes
    the server is empty."""
    from tests.mlflow_server import running_mlflow_server

    with running_mlflow_server(tmp_path_factory.mktemp("mlflow-server")) as url:
        yield url


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


# --- GPU checks ------------------------------------------------------------------------
# Tests marked `gpu` exercise the CUDA paths (nccl, GPU placement, the real LLM servers).
# They run where a CUDA GPU is present and are skipped elsewhere, and the summary counts
# them, so a green run on a CPU machine never passes for a GPU-verified one.
def _cuda_available() -> bool:
    import shutil

    if shutil.which("nvidia-smi") is None:
        return False
    import torch

    return torch.cuda.is_available()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    gpu_items = [item for item in items if item.get_closest_marker("gpu") is not None]
    config._gpu_checks_skipped = 0
    if not gpu_items or _cuda_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (runs on a GPU machine)")
    for item in gpu_items:
        item.add_marker(skip)
    config._gpu_checks_skipped = len(gpu_items)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    skipped = getattr(config, "_gpu_checks_skipped", 0)
    if skipped:
        terminalreporter.write_line(f"{skipped} GPU check{'s' if skipped != 1 else ''} not run here (no CUDA GPU)",
                                    yellow=True)
    seed = getattr(config.option, "randomly_seed", None)  # pytest-randomly's; -q hides its header line
    if isinstance(seed, int) and config.pluginmanager.has_plugin("randomly"):
        terminalreporter.write_line(f"tests ran in a random order: --randomly-seed={seed} repeats it")
