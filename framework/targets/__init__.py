"""Targets: one pure module per consumer, each `render(recipe) -> list[Artifact]`.

The registry lists dotted module paths, imported only when rendering (Metaflow's
plugin lists do the same), so `mlops validate` never pays for them. Targets know
nothing of the runtime and write nothing: generate.py writes what they return.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Literal

from framework.errors import MlopsError

# name -> module with `render(recipe: Recipe) -> list[Artifact]`
TARGETS: tuple[tuple[str, str], ...] = (
    ("ray", "framework.targets.ray"),
    ("rag", "framework.targets.rag"),
    ("batch", "framework.targets.batch"),
    ("feast", "framework.targets.feature_store"),
    ("triton", "framework.targets.triton"),
    ("kubernetes", "framework.targets.kubernetes"),
    ("traffic", "framework.targets.traffic"),
    ("monitoring", "framework.targets.monitoring"),
    ("github", "framework.targets.github"),
)


@dataclass(frozen=True)
class Artifact:
    """One generated file.

    `path` is POSIX and relative to `generated/<recipe>/<env>/` (scope "env") or to
    the workflows dir (scope "workflows"; env-independent, rendered once per recipe).
    `text` is the whole file, header comment included.
    """

    path: str
    text: str
    scope: Literal["env", "workflows"] = "env"


def render_all(recipe) -> list[Artifact]:
    """Every target's artifacts for one validated recipe, sorted by scope and path."""
    artifacts: list[Artifact] = []
    for _, module_path in TARGETS:
        module = importlib.import_module(module_path)
        artifacts.extend(module.render(recipe))
    seen: set[tuple[str, str]] = set()
    for artifact in artifacts:
        key = (artifact.scope, artifact.path)
        if key in seen:
            raise MlopsError(f"two targets render {artifact.scope}/{artifact.path}")
        seen.add(key)
    return sorted(artifacts, key=lambda a: (a.scope, a.path))
