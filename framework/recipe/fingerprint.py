"""Fingerprints the parse cache keys its answers by: the framework's own code, the Python
environment, folder listings, file contents, and the environment variables a recipe reads.

All cheap (stat calls and hashing a few kilobytes), since a warm command pays them every
time: the framework's source by modification time and size (a developer's edit or a
checkout changes both), the installed distributions by their dist-info names (versions).
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path

# Never part of what a recipe or a Feast repository is made of; walking them is costly.
SKIPPED_DIRS = frozenset({".git", ".venv", "__pycache__", ".ipynb_checkpoints", ".mlops"})

# OmegaConf resolvers whose answer depends only on the config and the key's inputs (oc.env
# on the environment variable, recorded); any other (`now`, a custom one) is not cached.
PURE_RESOLVERS = frozenset(
    {"oc.env", "oc.select", "oc.decode", "oc.create", "oc.deprecated", "oc.dict.keys", "oc.dict.values", "python_version"}
)
_RESOLVER = re.compile(r"\$\{\s*([\w.\-]+)\s*:")
_ENV_NAME = re.compile(r"\$\{\s*oc\.env\s*:\s*([^,}]*)")
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def sha256(data: bytes | str) -> str:
    return hashlib.sha256(data.encode("utf-8") if isinstance(data, str) else data).hexdigest()


@functools.lru_cache(maxsize=1)
def code() -> str:
    """The framework's source (every file under framework/, templates included) and the
    Python environment it runs in."""
    root = Path(__file__).resolve().parents[1]
    items = [sys.version, sys.prefix]
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS)
        for name in sorted(files):
            path = os.path.join(folder, name)
            try:
                stat = os.stat(path)
            except OSError:  # removed while walking (an editor's temporary file)
                continue
            items.append(f"{os.path.relpath(path, root)}:{stat.st_mtime_ns}:{stat.st_size}")
    items.extend(_distributions())
    return sha256("\n".join(items))


def _distributions() -> list[str]:
    """Installed distributions and their versions (pydantic, hydra-core, omegaconf, PyYAML...),
    read from the dist-info folder names: importlib.metadata would cost more than the rest."""
    found = []
    for entry in sys.path:
        if os.path.basename(entry) in ("site-packages", "dist-packages") and os.path.isdir(entry):
            found += sorted(n for n in os.listdir(entry) if n.endswith((".dist-info", ".egg-info")))
    return found


def listing(folder: Path) -> tuple[str, int]:
    """A digest of every name below `folder` (not their contents: an added group option, a
    removed optional file or a new group changes it), and the latest modification of a
    folder in it (an entry added or removed; the parse cache does not keep an answer whose
    folders changed while it read them). Symlinked folders are followed, as Hydra does."""
    names: list[str] = []
    newest = 0
    seen: set[str] = set()

    def walk(path: str, prefix: str) -> None:
        nonlocal newest
        real = os.path.realpath(path)
        if real in seen:
            return
        seen.add(real)
        newest = max(newest, os.stat(path).st_mtime_ns)
        with os.scandir(path) as entries:
            for entry in sorted(entries, key=lambda e: e.name):
                if entry.is_dir():
                    names.append(f"{prefix}{entry.name}/")
                    if entry.name not in SKIPPED_DIRS:
                        walk(entry.path, f"{prefix}{entry.name}/")
                else:
                    names.append(prefix + entry.name)

    try:
        walk(str(folder), "")
    except OSError:
        return "missing", 0
    return sha256("\n".join(names)), newest


def file(path: Path) -> str | None:
    try:
        with open(path, "rb") as handle:
            return sha256(handle.read())
    except OSError:
        return None


def env_names(texts: Iterable[str]) -> list[str] | None:
    """The environment variables `${oc.env:NAME}` interpolations in `texts` read; None
    when a text uses a resolver outside PURE_RESOLVERS or computes a variable's name."""
    names: set[str] = set()
    for text in texts:
        if "${" not in text:
            continue
        if any(name not in PURE_RESOLVERS for name in _RESOLVER.findall(text)):
            return None
        for raw in _ENV_NAME.findall(text):
            name = raw.strip().strip("'\"")
            if not _PLAIN_NAME.fullmatch(name):
                return None
            names.add(name)
    return sorted(names)


def env_value(name: str) -> str | None:
    """A variable's value as the cache keeps it: hashed, since it may be a secret."""
    value = os.environ.get(name)
    return None if value is None else sha256(value)
