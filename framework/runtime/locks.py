"""File locks that keep two applies of one recipe from writing the same MLflow store.

`flock` locks belong to the open file, so the kernel drops them when the holder dies
(even on SIGKILL): a crashed apply never leaves a lock behind that needs cleaning up.
The lock file stays on disk on purpose: unlinking a flock'ed file lets a third process
lock a fresh inode while a second still holds the old one.
"""

from __future__ import annotations

import fcntl
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from framework.errors import MlopsError

LOCKS_DIR = "locks"


def lock_path(state_dir: Path, recipe_name: str) -> Path:
    # Recipe names are already DNS-like; the substitution only guards against paths.
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", recipe_name)
    return Path(state_dir).resolve() / LOCKS_DIR / f"{safe}.lock"


def _holder(fd: int) -> str:
    """The pid the holder wrote, or 'unknown' (it may lock before it writes)."""
    try:
        text = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
    except OSError:
        return "unknown"
    return text if text.isdigit() else "unknown"


@contextmanager
def apply_lock(state_dir: Path, recipe_name: str) -> Iterator[Path]:
    """Hold the exclusive apply lock of one recipe; fail at once when another holds it.

    Non-blocking on purpose: an apply waiting silently behind another would apply a
    recipe the user may already have changed; a clear error lets them decide.
    """
    path = lock_path(state_dir, recipe_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    # os.open fds are non-inheritable (PEP 446), so spawned subprocesses don't keep the
    # lock alive; a fork() without exec would, as with any flock.
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise MlopsError(
                f"apply of {recipe_name} is already running (pid {_holder(fd)}); "
                f"wait for it or remove {path} if that process is gone"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            yield path
        finally:
            # Clear the pid first so a stale number never names an unrelated process.
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextmanager
def blocking_lock(path: Path) -> Iterator[None]:
    """A short exclusive lock that waits (used around MLflow's first-use schema setup,
    where two processes creating the same sqlite tables at once would collide)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
