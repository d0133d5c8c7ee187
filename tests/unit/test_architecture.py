"""The architecture as a checked contract: the import-linter contracts of pyproject.toml
(one direction recipe < contracts < targets | runtime < api < cli, the light core, no
cycles), small modules, and a runtime whose top level stays a handful of modules."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FRAMEWORK = REPO / "framework"
MAX_LINES = 450
MAX_RUNTIME_TOP_MODULES = 8


def test_the_import_contracts_hold() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    assert lint.exists(), "import-linter is a dev dependency: pip install -e '.[dev]'"
    done = subprocess.run([str(lint), "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert "Contracts: 3 kept, 0 broken." in done.stdout


@pytest.mark.parametrize("path", sorted(FRAMEWORK.rglob("*.py")), ids=lambda p: str(p.relative_to(REPO)))
def test_no_module_is_over_450_lines(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(REPO)} has {lines} lines: split it by concern"


def test_the_runtime_is_grouped_by_phase() -> None:
    top = sorted(p.name for p in (FRAMEWORK / "runtime").glob("*.py"))
    assert len(top) <= MAX_RUNTIME_TOP_MODULES, top
    for package in ("training", "pipeline", "kubernetes", "serving", "rollout", "monitor", "rag", "batch"):
        assert (FRAMEWORK / "runtime" / package / "__init__.py").is_file(), package


def test_every_package_says_what_it_holds() -> None:
    silent = [str(p.relative_to(REPO)) for p in FRAMEWORK.rglob("__init__.py")
              if not p.read_text(encoding="utf-8").lstrip().startswith('"""')]
    assert not silent, f"packages without a docstring: {silent}"
