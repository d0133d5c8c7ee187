"""Compose and validate a recipe, or answer from the parse cache when nothing it read changed.

Like dbt's partial parsing: a valid recipe's composed config, provenance and identity are
stored under a key of everything that chose them (the framework's code and version, the
Python environment, the working directory, the project's folders, the recipe, env and
overrides), together with what the run read: the content of every file (the recipe, its
group files and env overlay, a Feast repository's definitions), the listing of every
folder looked at (a new group option changes the answer) and the environment variables
its `${oc.env:...}` interpolations name. An entry is used only when all of those are as
they were, so a warm `validate` imports neither Hydra nor the recipe models. Errors are
not cached: a broken recipe reports the same problems every time.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from framework.errors import Location, Problem
from framework.project import Project
from framework.recipe import cache_store, fingerprint
from framework.recipe.reads import Reads, recording

FORMAT = 2  # 2: entries carry the recipe's warnings
# A file or folder changed this recently may have changed while the run read it: the
# answer is not stored (file systems stamp times at clock-tick granularity, up to 10 ms).
RACY_NS = 50_000_000
YAML_SUFFIXES = (".yaml", ".yml")


@dataclass
class Parsed:
    """A valid recipe: its name and env, and the `Validated` (composed + Recipe) on demand."""

    name: str
    environment: str
    digest: str | None  # names this answer (its key and inputs); None when not cached
    entry: dict[str, Any] | None = None
    _validated: Any = None

    def validated(self) -> Any:
        """`framework.recipe.validate.Validated`, revived from the cache without Hydra."""
        if self._validated is None:
            self._validated = _revive(self.entry or {})
        return self._validated

    def warnings(self) -> tuple[Problem, ...]:
        """The recipe's warnings (Validated.warnings), without reviving the models."""
        if self._validated is not None:
            return tuple(self._validated.warnings)
        return _warnings(self.entry or {})


def parse(project: Project, recipe: str, env: str | None = None, overrides: Sequence[str] = ()) -> Parsed:
    """The recipe composed and validated (raises RecipeError), from the cache when current."""
    if not cache_store.enabled():
        return _fresh(project, recipe, env, overrides)
    key = _key(project, recipe, env, overrides)
    path = cache_store.folder(project.state_dir, "recipes") / f"{key}.json"
    entry = cache_store.read(path)
    if entry is not None and _current(entry, key):
        return Parsed(entry["name"], entry["environment"], entry["digest"], entry)
    started = time.time_ns()
    with recording() as seen:
        parsed = _fresh(project, recipe, env, overrides)
    inputs = _inputs(seen, overrides, started)
    entry = _entry(key, inputs, parsed.validated()) if inputs is not None else None
    if entry is not None:
        cache_store.write(path, entry)
        parsed.digest, parsed.entry = entry["digest"], entry
    return parsed


def _fresh(project: Project, recipe: str, env: str | None, overrides: Sequence[str]) -> Parsed:
    from framework.recipe.compose import compose_recipe
    from framework.recipe.validate import validate_composed

    validated = validate_composed(compose_recipe(project, recipe, env, overrides), project.root)
    return Parsed(validated.recipe.name, validated.recipe.environment, None, None, validated)


def _key(project: Project, recipe: str, env: str | None, overrides: Sequence[str]) -> str:
    import framework

    settings = [str(getattr(project, f.name)) for f in dataclasses.fields(project)]
    parts = [FORMAT, framework.__version__, fingerprint.code(), os.getcwd(), settings, recipe, env, list(overrides)]
    return fingerprint.sha256(json.dumps(parts))


def _current(entry: dict[str, Any], key: str) -> bool:
    """Every input as it was when the entry was written (a malformed entry is not)."""
    try:
        if entry["format"] != FORMAT or entry["key"] != key:
            return False
        inputs = entry["inputs"]
        return (
            all(isinstance(entry[k], str) for k in ("name", "environment", "digest"))
            and isinstance(entry["config"], dict) and len(entry["source"]) == 3
            and all(isinstance(entry[k], list) for k in ("source", "overrides", "provenance"))
            and all(fingerprint.env_value(n) == v for n, v in inputs["env"].items())
            and all(fingerprint.file(Path(p)) == d for p, d in inputs["files"].items())
            and all(fingerprint.listing(Path(p))[0] == d for p, d in inputs["trees"].items())
        )
    except (KeyError, TypeError, AttributeError):
        return False


def _inputs(seen: Reads, overrides: Sequence[str], started: int) -> dict[str, Any] | None:
    """What the run read, fingerprinted; None when it cannot be keyed safely."""
    if not seen.complete or any("shuffle" in o for o in overrides):  # Hydra's shuffle() is random
        return None
    recent = started - RACY_NS
    files, texts = {}, list(overrides)
    for path in sorted(seen.files):
        try:
            data, stat = path.read_bytes(), path.stat()
        except OSError:
            return None
        if stat.st_mtime_ns >= recent:
            return None
        files[str(path)] = fingerprint.sha256(data)
        if path.suffix in YAML_SUFFIXES:
            texts.append(data.decode("utf-8", "replace"))
    trees = {}
    for folder in sorted(seen.trees):
        digest, newest = fingerprint.listing(folder)
        if newest >= recent:
            return None
        trees[str(folder)] = digest
    names = fingerprint.env_names(texts)
    if names is None:
        return None
    return {"files": files, "trees": trees, "env": {name: fingerprint.env_value(name) for name in names}}


def _entry(key: str, inputs: dict[str, Any], validated: Any) -> dict[str, Any] | None:
    composed, recipe = validated.composed, validated.recipe
    try:
        if json.loads(json.dumps(composed.config)) != composed.config:  # keys or values JSON cannot keep
            return None
    except (TypeError, ValueError):
        return None
    return {
        "format": FORMAT,
        "key": key,
        "digest": fingerprint.sha256(json.dumps([key, inputs], sort_keys=True)),
        "inputs": inputs,
        "name": recipe.name,
        "environment": recipe.environment,
        "source": [composed.source.name, str(composed.source.file), str(composed.source.config_dir)],
        "overrides": list(composed.overrides),
        "config": composed.config,
        "provenance": [[k, loc.file, loc.line] for k, loc in composed.provenance.locations.items()],
        "warnings": [[w.location.file if w.location else None, w.location.line if w.location else None, w.key,
                      w.message] for w in validated.warnings],
    }


def _warnings(entry: dict[str, Any]) -> tuple[Problem, ...]:
    return tuple(Problem(Location(file, line) if file is not None else None, key, message, "warning")
                 for file, line, key, message in entry.get("warnings", []))


def _revive(entry: dict[str, Any]) -> Any:
    """The Validated a cold run returned: the models are built from the same config, and its
    checks passed for these very inputs."""
    from framework.recipe.compose import Composed
    from framework.recipe.provenance import Provenance
    from framework.recipe.recipe import Recipe
    from framework.recipe.source import RecipeSource
    from framework.recipe.validate import Validated

    name, file, config_dir = entry["source"]
    provenance = Provenance({k: Location(f, line) for k, f, line in entry["provenance"]})
    composed = Composed(RecipeSource(name, Path(file), Path(config_dir)), tuple(entry["overrides"]), entry["config"],
                        provenance)
    return Validated(composed, Recipe.model_validate(entry["config"]), _warnings(entry))
