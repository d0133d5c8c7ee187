"""The cache's files: one JSON document per entry under the project's state dir.

A cache may only make commands faster, never fail them: an unreadable, partial or corrupt
entry reads as missing, and an unwritable folder (a read-only checkout in CI) is skipped
without a word. Entries are written to a temporary sibling and renamed into place, so a
reader never sees half of one; `MLOPS_NO_CACHE=1` turns the cache off, and `read_only()`
keeps a command that promises to write nothing (`apply --dry-run`) from writing entries.
"""

from __future__ import annotations

import json
import os
import tempfile
import zlib
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

ENV_SWITCH = "MLOPS_NO_CACHE"
MAX_ENTRIES = 2000  # per folder; the oldest go first
PRUNE_EVERY = 64  # writes, on average
_READ_ONLY: ContextVar[bool] = ContextVar("mlops_cache_read_only", default=False)


def enabled() -> bool:
    return os.environ.get(ENV_SWITCH, "").strip().lower() in ("", "0", "false", "no")


@contextmanager
def read_only():
    """Within it, entries are read but never written."""
    token = _READ_ONLY.set(True)
    try:
        yield
    finally:
        _READ_ONLY.reset(token)


def folder(state_dir: Path, kind: str) -> Path:
    return state_dir / "cache" / kind


def read(path: Path) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write(path: Path, data: dict[str, Any]) -> None:
    if _READ_ONLY.get():
        return
    text = json.dumps(data, separators=(",", ":"))  # key order kept: it is the recipe's order
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
        tmp = None
        if zlib.crc32(path.name.encode()) % PRUNE_EVERY == 0:  # now and then: a listing costs ~1 ms
            _prune(path.parent)
    except OSError:
        return
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def _prune(where: Path) -> None:
    """Entries of an edited framework or recipe are never read again: keep the newest."""
    entries = list(os.scandir(where))
    if len(entries) <= MAX_ENTRIES:
        return
    entries.sort(key=lambda e: e.stat().st_mtime_ns)
    for entry in entries[: len(entries) - MAX_ENTRIES // 2]:
        Path(entry.path).unlink(missing_ok=True)
