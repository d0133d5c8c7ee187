"""The runtime's one input and its one way out.

Every `python -m framework.runtime.*` entrypoint (the training job, fetch_model, the
drift monitor, the RAG index job, batch scoring and its launcher) reads the recipe that
`mlops generate` wrote (`recipe.resolved.yaml`) through `load_resolved`, and runs its
body through `run_entrypoint`, so a user's error is printed the same way everywhere: one
`file: key: message` line per problem on stderr, the error's exit code, no traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

import yaml

from framework.errors import Location, MlopsError, Problem, exit_code_for


def load_resolved(path: Path):
    """(Recipe, its text) of the file `generate` wrote; anything else is refused with the
    usual error lines."""
    from pydantic import ValidationError

    from framework.recipe.errors_map import problems_from
    from framework.recipe.provenance import Provenance
    from framework.recipe.recipe import Recipe

    try:
        text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text)
    except (OSError, yaml.YAMLError) as exc:
        raise MlopsError([Problem(Location(str(path)), "", f"cannot read the resolved recipe: {exc}")]) from None
    try:
        return Recipe.model_validate(data), text
    except ValidationError as exc:
        problems = problems_from(exc.errors(include_url=False), data, Recipe, Provenance())
        raise MlopsError([Problem(Location(str(path)), p.key, p.message) for p in problems]) from None


def run_entrypoint(body: Callable[[], int | None], *, prefix: str = "") -> int:
    """Run an entrypoint's body; its MlopsError becomes problem lines (each after `prefix`,
    e.g. the init container's name) and the error's exit code."""
    try:
        return body() or 0
    except MlopsError as error:
        for problem in error.problems:
            print(f"{prefix}{problem}", file=sys.stderr)
        return exit_code_for(error)
