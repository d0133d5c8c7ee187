"""A project as users keep one: a git checkout with a commit, a `.gitignore`, a virtualenv
inside the project folder, and `generated/` committed beside the recipes. Apply reads the
commit (`mlops.git_commit`), the upload to a cluster must leave the venv and the ignored
files out, and generate finds last time's artifacts in place."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

GITIGNORE = """\
# what a Python project ignores
.venv/
__pycache__/
*.pyc
.mlops/
*.log
.ipynb_checkpoints/
"""
GIT = ["git", "-c", "user.name=Dev", "-c", "user.email=dev@example.com", "-c", "init.defaultBranch=main",
       "-c", "commit.gpgsign=false"]


def git(root: Path, *args: str) -> str:
    done = subprocess.run([*GIT, *args], cwd=root, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def make_user_project(root: Path, generated_from: Path | None = None) -> str:
    """Turn the copied project at `root` into a user's checkout; returns HEAD.
    `generated_from`: a folder whose `generated/` and `.github/` are committed too (the repository's)."""
    (root / ".gitignore").write_text(GITIGNORE, encoding="utf-8")
    for folder in ("generated", ".github") if generated_from is not None else ():  # what generate wrote last time
        if (generated_from / folder).is_dir():
            shutil.copytree(generated_from / folder, root / folder, dirs_exist_ok=True)
    _virtualenv(root / ".venv")
    (root / "notebook.log").write_text("a local log the upload must not carry\n", encoding="utf-8")
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "the project")
    return git(root, "rev-parse", "HEAD")


def _virtualenv(folder: Path) -> None:
    """The shape of `python -m venv .venv` with a package in it, without the install time."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    package = folder / "lib" / version / "site-packages" / "heavy_dependency"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("WEIGHTS = b''\n", encoding="utf-8")
    (package / "weights.bin").write_bytes(b"\0" * 65536)
    (folder / "pyvenv.cfg").write_text(f"home = {Path(sys.executable).parent}\ninclude-system-site-packages = false\n",
                                       encoding="utf-8")
    (folder / "bin").mkdir()
    (folder / "bin" / "python").symlink_to(sys.executable)
