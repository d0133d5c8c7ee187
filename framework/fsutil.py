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
