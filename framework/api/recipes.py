"""The API of the recipe commands: load, validate, show, plan, and the JSON Schemas.
`load_recipe` composes and validates one recipe (every other command starts there);
`validate` and `show` report on recipes, `plan` says what generating would change, and
`write_schemas`/`check_schemas` export or compare the recipe language's JSON Schemas.
Each returns a result (results.py) or raises an `MlopsError`; nothing here prints, and
nothing heavy is imported.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from framework.api.results import Leaf, PlanResult, RecipeStatus, SchemaResult, ShowResult, ValidateResult
from framework.errors import DriftError, Location, MlopsError, Problem
from framework.project import Project, display_path


def as_project(project: Project | Path | None) -> Project:
    """The project given, or the one at (or above) that path, or the working directory's."""
    if isinstance(project, Project):
        return project
    return Project.discover(project)


def load_recipe(recipe: str, env: str | None = None, overrides: Sequence[str] = (), project: Project | Path | None = None):
    """Compose and validate one recipe; returns `Validated` (composed + Recipe)."""
    return parse_recipe(recipe, env, overrides, project).validated()


def parse_recipe(recipe: str, env: str | None = None, overrides: Sequence[str] = (), project: Project | Path | None = None):
    """`load_recipe`'s answer as a `Parsed` (name, env, `.validated()`): from the parse cache
    (framework/recipe/parse_cache.py) when nothing it read changed, without Hydra or models."""
    from framework.recipe.parse_cache import parse

    return parse(as_project(project), recipe, env, overrides)


def recipe_envs(recipe: str, project: Project | Path | None = None) -> list[str]:
    """The env overlays a recipe can be composed with (options of its `env` group)."""
    from framework.recipe.source import locate

    return locate(as_project(project), recipe).options("env")


def validate(
    recipes: Sequence[str] = (),
    env: str | None = None,
    overrides: Sequence[str] = (),
    all_envs: bool = False,
    project: Project | Path | None = None,
    strict: bool = False,
) -> ValidateResult:
    """Compose and validate recipes (all of the project's when none are named). Each
    valid one's warnings come with its status; `strict` makes them errors (exit 1)."""
    proj = as_project(project)
    names = list(recipes) or proj.recipe_names()
    if not names:
        raise MlopsError([Problem(Location(display_path(proj.recipes_dir)), "", "no recipes found")])
    statuses = []
    for name in names:
        envs: list[str | None] = [env]
        if all_envs:
            try:
                envs = list(recipe_envs(name, proj)) or [None]
            except MlopsError as error:
                statuses.append(RecipeStatus(name, None, error.problems))
                continue
        for one_env in envs:
            try:
                parsed = parse_recipe(name, one_env, overrides, proj)
                statuses.append(RecipeStatus(name, parsed.environment, [], list(parsed.warnings()), strict))
            except MlopsError as error:
                statuses.append(RecipeStatus(name, one_env, error.problems))
    return ValidateResult(statuses, strict)


def show(recipe: str, env: str | None = None, overrides: Sequence[str] = (), project: Project | Path | None = None,
         provenance: bool = False) -> ShowResult:
    """The resolved recipe, defaults filled in, and where each key was set (`provenance`:
    its lines list the source of every key instead of the YAML)."""
    validated = load_recipe(recipe, env, overrides, project)
    resolved = validated.recipe.model_dump(mode="json")
    where = validated.composed.provenance
    leaves = [Leaf(path, value, str(where.set_by(path) or "(default)")) for path, value in _leaves(resolved)]
    return ShowResult(validated.recipe.name, validated.recipe.environment, resolved, leaves, provenance)


def _leaves(tree: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(tree, dict) and tree:
        return [leaf for key, value in tree.items() for leaf in _leaves(value, f"{prefix}.{key}" if prefix else key)]
    if isinstance(tree, list) and tree:
        return [leaf for i, value in enumerate(tree) for leaf in _leaves(value, f"{prefix}.{i}")]
    return [(prefix, tree)]


def schema_files() -> dict[str, str]:
    """Relative path under schemas/ -> text: the recipe language's schemas and those of the
    files the runtime writes (the rollout record)."""
    from framework.contracts.rollout_record import SCHEMA_PATH, record_schema
    from framework.recipe.schema import document, export_schemas

    return {**export_schemas(), SCHEMA_PATH: document(SCHEMA_PATH, record_schema())}


def write_schemas(project: Project | Path | None = None) -> SchemaResult:
    """Export the recipe language's JSON Schemas into the schemas dir."""
    from framework.fsutil import write_files_atomic

    proj = as_project(project)
    files = {proj.schemas_dir / rel: text for rel, text in schema_files().items()}
    write_files_atomic(files)
    return SchemaResult(sorted(files), [])


def check_schemas(project: Project | Path | None = None) -> SchemaResult:
    """Compare the committed schemas with a fresh export; raises DriftError on drift."""
    proj = as_project(project)
    expected = {proj.schemas_dir / rel: text for rel, text in schema_files().items()}
    drifted = [p for p, text in expected.items() if not p.is_file() or p.read_text(encoding="utf-8") != text]
    known = set(expected)
    stale = [p for p in proj.schemas_dir.rglob("*.schema.json") if p not in known] if proj.schemas_dir.is_dir() else []
    drifted = sorted(drifted + stale)
    if drifted:
        raise DriftError(
            [Problem(Location(display_path(p)), "", "differs from the models: run `mlops schema` and commit") for p in drifted]
        )
    return SchemaResult([], [], checked=True)


def plan(recipe: str, env: str | None = None, overrides: Sequence[str] = (), project: Project | Path | None = None) -> PlanResult:
    """What generating (and so applying) would change for one recipe and env."""
    from framework.plan import plan_changes

    proj = as_project(project)
    validated = load_recipe(recipe, env, overrides, proj)
    r = validated.recipe
    return PlanResult(r.name, r.environment, plan_changes(proj, validated), _training_status(r, proj))


def _training_status(r, proj: Project) -> str:
    """A tabular recipe's training job: cached by an earlier run, or why it runs."""
    if r.model.kind != "tabular" or r.training is None or r.data is None:
        return ""
    from framework.runtime.stepcache.probe import probe

    found = probe(r, proj.root, proj.state_dir)
    return f"training job {found.hit.line()}" if found.hit else f"training job runs: {found.reason}"
