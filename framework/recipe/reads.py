"""What composing and validating a recipe read: files, and folders whose listing mattered.

Hydra's loader and the Feast catalog report here while `recording()` is active, so the
parse cache can key an answer by exactly the inputs that produced it (dbt's partial
parsing does the same). Outside `recording()` reporting costs nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Reads:
    files: set[Path] = field(default_factory=set)  # content read
    trees: set[Path] = field(default_factory=set)  # listing looked at (groups, options, optional files)
    complete: bool = True  # False: something was read that cannot be recorded, so do not cache


_current: ContextVar[Reads | None] = ContextVar("mlops_reads", default=None)


@contextmanager
def recording() -> Iterator[Reads]:
    reads = Reads()
    token = _current.set(reads)
    try:
        yield reads
    finally:
        _current.reset(token)


def record_files(paths: Iterable[Path] | None) -> None:
    """`None`: the reader could not say what it read."""
    reads = _current.get()
    if reads is None:
        return
    if paths is None:
        reads.complete = False
        return
    reads.files.update(Path(p) for p in paths)


def record_file(path: Path) -> None:
    record_files([path])


def record_tree(folder: Path) -> None:
    reads = _current.get()
    if reads is not None:
        reads.trees.add(Path(folder))
