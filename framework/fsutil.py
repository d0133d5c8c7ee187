"""Atomic writes: a set of files appears whole or not at all."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def write_files_atomic(files: dict[Path, str]) -> None:
    """Write every file to a temporary sibling first, then rename them all into place.

    If anything fails before the renames, no target is touched; renames themselves are
    atomic per file, so a reader never sees a half-written file.
    """
    staged: list[tuple[Path, Path]] = []
    try:
        for target, text in files.items():
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
                handle.write(text)
            staged.append((Path(tmp), target))
        for tmp, target in staged:
            os.replace(tmp, target)
    finally:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)


def update_tree_atomically(root: Path, writes: dict[Path, str], deletes: list[Path]) -> None:
    """Apply writes and deletes under `root` so that readers, a failure or a kill see
    either the old tree or the new one, never a mix.

    The new tree is built in a staging sibling (a copy of the old one with the changes)
    and exchanged with `root` in one atomic step (Linux renameat2 RENAME_EXCHANGE);
    where that is unavailable, two renames leave a window of a few microseconds.
    """
    import shutil

    staging = Path(tempfile.mkdtemp(prefix=f".{root.name}.staging-", dir=root.parent))
    try:
        if root.is_dir():
            shutil.copytree(root, staging, dirs_exist_ok=True, symlinks=True)
        for path in deletes:
            (staging / path.relative_to(root)).unlink(missing_ok=True)
        for path, text in writes.items():
            target = staging / path.relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8", newline="\n")
        _prune_empty_dirs(staging)
        if root.is_dir():
            _exchange(staging, root)  # staging now holds the old tree
        else:
            os.replace(staging, root)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _prune_empty_dirs(root: Path) -> None:
    for folder in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()


def _exchange(a: Path, b: Path) -> None:
    import ctypes
    import sys

    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = getattr(libc, "renameat2", None)
        if renameat2 is not None:
            at_fdcwd, rename_exchange = -100, 2
            if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
                return
    aside = b.with_name(f".{b.name}.old-{os.getpid()}")
    os.replace(b, aside)
    os.replace(a, b)
    os.replace(aside, a)
