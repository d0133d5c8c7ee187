"""The Python API of the framework; the CLI only calls these functions.

Each returns a result object or raises an `MlopsError` (see errors.py); nothing here
prints. The import-light core: no torch, ray, mlflow, evidently or onnx at import.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from framework.errors import DriftError, Location, MlopsError, Problem
from framework.project import Project, display_path

__all__ = [
    "RecipeStatus", "ValidateResult", "ShowResult", "Leaf", "SchemaResult",
    "load_recipe", "validate", "show", "write_schemas", "check_schemas", "recipe_envs",
    "GenerateResult", "generate", "PlanResult", "plan",
]


@dataclass(frozen=True)
class RecipeStatus:
    recipe: str
    env: str | None
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class ValidateResult:
    statuses: list[RecipeStatus]

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.statuses)


@dataclass(frozen=True)
class Leaf:
    path: str  # dotted key path, list items by index
    value: Any
    source: str  # "file:line", "<override>" or "(default)"


@dataclass(frozen=True)
class ShowResult:
    recipe: str
    env: str
    resolved: dict[str, Any]
    leaves: list[Leaf]


@dataclass(frozen=True)
class SchemaResult:
    written: list[Path]
    drifted: list[Path]


def _project(project: Project | Path | None) -> Project:
    if isinstance(project, Project):
        return project
    return Project.discover(project)


def load_recipe(recipe: str, env: str | None = None, overrides: Sequence[str] = (), project: Project | Path | None = None):
    """Compose and validate one recipe; returns `Validated` (composed + Recipe)."""
    from framework.recipe.compose import compose_recipe
    from framework.recipe.validate import validate_composed

    return validate_composed(compose_recipe(_project(project), recipe, env, overrides))


def recipe_envs(recipe: str, project: Project | Path | None = None) -> list[str]:
    """The env overlays a recipe can be composed with (options of its `env` group)."""
    from framework.recipe.compose import locate

    return locate(_project(project), recipe).options("env")


def validate(
    recipes: Sequence[str] = (),
    env: str | None = None,
    overrides: Sequence[str] = (),
    all_envs: bool = False,
    project: Project | Path | None = None,
) -> ValidateResult:
    """Compose and validate recipes (all of the project's when none are named)."""
    proj = _project(project)
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
                validated = load_recipe(name, one_env, overrides, proj)
                statuses.append(RecipeStatus(name, validated.recipe.environment))
            except MlopsError as error:
                statuses.append(RecipeStatus(name, one_env, error.problems))
    return ValidateResult(statuses)


def show(recipe: str, env: str | None = None, overrides: Sequence[str] = (), project: Project | Path | None = None) -> ShowResult:
    """The resolved recipe, defaults filled in, and where each key was set."""
    validated = load_recipe(recipe, env, overrides, project)
    resolved = validated.recipe.model_dump(mode="json")
    provenance = validated.composed.provenance
    leaves = [Leaf(path, value, str(provenance.set_by(path) or "(default)")) for path, value in _leaves(resolved)]
    return ShowResult(validated.recipe.name, validated.recipe.environment, resolved, leaves)


def _leaves(tree: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(tree, dict) and tree:
        return [leaf for key, value in tree.items() for leaf in _leaves(value, f"{prefix}.{key}" if prefix else key)]
    if isinstance(tree, list) and tree:
        return [leaf for i, value in enumerate(tree) for leaf in _leaves(value, f"{prefix}.{i}")]
    return [(prefix, tree)]


def write_schemas(project: Project | Path | None = None) -> SchemaResult:
    """Export the recipe language's JSON Schemas into the schemas dir."""
    from framework.fsutil import write_files_atomic
    from framework.recipe.schema import export_schemas

    proj = _project(project)
    files = {proj.schemas_dir / rel: text for rel, text in export_schemas().items()}
    write_files_atomic(files)
    return SchemaResult(sorted(files), [])


def check_schemas(project: Project | Path | None = None) -> SchemaResult:
    """Compare the committed schemas with a fresh export; raises DriftError on drift."""
    from framework.recipe.schema import export_schemas

    proj = _project(project)
    expected = {proj.schemas_dir / rel: text for rel, text in export_schemas().items()}
    drifted = [p for p, text in expected.items() if not p.is_file() or p.read_text(encoding="utf-8") != text]
    known = set(expected)
    stale = [p for p in proj.schemas_dir.rglob("*.schema.json") if p not in known] if proj.schemas_dir.is_dir() else []
    drifted = sorted(drifted + stale)
    if drifted:
        raise DriftError(
            [Problem(Location(display_path(p)), "", "differs from the models: run `mlops schema` and commit") for p in drifted]
        )
    return SchemaResult([], [])


@dataclass(frozen=True)
class GenerateResult:
    recipes: list[tuple[str, str]]  # (recipe, env) rendered
    added: list[Path]
    changed: list[Path]
    removed: list[Path]
    unchanged: int


def generate(
    recipes: Sequence[str] = (),
    env: str | None = None,
    all_envs: bool = False,
    check: bool = False,
    project: Project | Path | None = None,
) -> GenerateResult:
    """Render recipes (all when none are named) into generated/ and the workflows dir.

    With `check`, nothing is written and a DriftError lists what differs (added,
    changed with a short diff, stale). Recipe errors raise before anything is written.
    """
    from framework import generate as gen

    proj = _project(project)
    names = list(recipes) or proj.recipe_names()
    rendered, problems = [], []
    for name in names:
        envs: list[str | None] = list(recipe_envs(name, proj)) if all_envs else [env]
        for one_env in envs or [None]:
            try:
                rendered.append(gen.render_env(proj, load_recipe(name, one_env, (), proj)))
            except MlopsError as error:
                problems.extend(error.problems)
    if problems:
        raise MlopsError(problems)
    gen.check_no_collisions(rendered)
    expected = gen.expected_outputs(proj, rendered)
    everything = not recipes and all_envs
    changes = gen.compare(expected, gen.owned_files(proj, rendered, everything))
    if check and changes.any:
        raise DriftError(gen.drift_problems(changes))
    if not check:
        gen.write(proj, expected, changes)
    unchanged = len(expected) - len(changes.added) - len(changes.changed)
    return GenerateResult([(r.recipe, r.env) for r in rendered], changes.added, changes.changed, changes.removed, unchanged)


@dataclass(frozen=True)
class PlanResult:
    recipe: str
    env: str
    lines: list[str]  # what would change, in domain terms

    @property
    def changes(self) -> bool:
        return bool(self.lines)


def plan(recipe: str, env: str | None = None, overrides: Sequence[str] = (), project: Project | Path | None = None) -> PlanResult:
    """What generating (and so applying) would change for one recipe and env."""
    from framework.plan import plan_changes

    proj = _project(project)
    validated = load_recipe(recipe, env, overrides, proj)
    return PlanResult(validated.recipe.name, validated.recipe.environment, plan_changes(proj, validated))
