"""Generate's answer without rendering when nothing changed: the digest of every file each
recipe x env rendered, kept under the parse cache's digest of that recipe's inputs (which
covers the framework's code, so the targets and templates too).

When every combination and the project-wide actionlint config have digests here, and
every file on disk hashes to them with no stale file besides, `generate` has nothing to
write and `generate --check` nothing to report: the answer rendering would give. Anything
else (a miss, a drifted, missing or stale file) takes the rendering way, which reports or
writes the differences with their diffs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from framework import generate as gen
from framework.errors import MlopsError
from framework.project import Project
from framework.recipe import cache_store, fingerprint

KIND = "generate"


def remember(project: Project, parsed: Any, rendered: gen.RenderedEnv) -> None:
    """Keep the digests of what `parsed` (a parse_cache.Parsed) rendered to."""
    if parsed.digest is None or not cache_store.enabled():
        return
    entry = {
        "recipe": rendered.recipe,
        "env": rendered.env,
        "files": {rel: fingerprint.sha256(text) for rel, text in rendered.files.items()},
        "workflows": {rel: fingerprint.sha256(text) for rel, text in rendered.workflows.items()},
    }
    cache_store.write(_folder(project) / _name(parsed), entry)


def remember_project_file(project: Project, every: Sequence[Any], path: Path, text: str) -> None:
    """The actionlint config, made of every recipe of the project: keyed by all of them."""
    key = _every_key(every)
    if key is not None and cache_store.enabled():
        cache_store.write(_folder(project) / f"project-{key}.json", {"path": str(path), "sha256": fingerprint.sha256(text)})


def unchanged(project: Project, parsed: Sequence[Any], every: Sequence[Any], everything: bool) -> int | None:
    """How many files are up to date when all of them are and the cache knows it; else None."""
    key = _every_key([*parsed, *every])
    if key is None or not cache_store.enabled():
        return None
    envs = [_rendered(project, p) for p in parsed]
    shared = cache_store.read(_folder(project) / f"project-{_every_key(every)}.json")
    if any(env is None for env in envs) or not _valid(shared, ("path", "sha256")):
        return None
    try:
        gen.check_no_collisions(envs)
        expected = gen.expected_outputs(project, envs)
        expected[Path(shared["path"])] = shared["sha256"]
        if any(_on_disk(path) != digest for path, digest in expected.items()):
            return None
        if gen.owned_files(project, envs, everything) - set(expected):  # a stale file to report or delete
            return None
    except (MlopsError, TypeError, ValueError):  # the rendering way raises it with its message; or a bad entry
        return None
    return len(expected)


def _rendered(project: Project, parsed: Any) -> gen.RenderedEnv | None:
    """A RenderedEnv whose texts are their digests (enough to compare and to find collisions)."""
    entry = cache_store.read(_folder(project) / _name(parsed))
    if not _valid(entry, ("recipe", "env", "files", "workflows")):
        return None
    directory = project.generated_dir / entry["recipe"] / entry["env"]
    return gen.RenderedEnv(entry["recipe"], entry["env"], directory, entry["files"], entry["workflows"])


def _valid(entry: dict[str, Any] | None, keys: tuple[str, ...]) -> bool:
    return entry is not None and all(k in entry for k in keys) and all(
        isinstance(entry[k], (str, dict)) for k in keys)


def _on_disk(path: Path) -> str | None:
    """The digest of a file's text as `generate.compare` reads it (universal newlines)."""
    try:
        return fingerprint.sha256(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return None


def _every_key(parsed: Sequence[Any]) -> str | None:
    digests = [p.digest for p in parsed]
    return None if None in digests else fingerprint.sha256("\n".join(digests))


def _name(parsed: Any) -> str:
    """A combination's entry: its parse digest and the target registry (data, which tests and
    plugins may replace without editing the framework's files)."""
    from framework.targets import TARGETS

    return f"{fingerprint.sha256(repr([parsed.digest, TARGETS]))}.json"


def _folder(project: Project) -> Path:
    return cache_store.folder(project.state_dir, KIND)
