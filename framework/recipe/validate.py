"""Composed dict -> `Recipe`: the models first, then the cross-field rules. Errors raise
a RecipeError; warnings (rules of severity warning: a deprecated backend, say) are data
of the result, `Validated.warnings`, for validate and generate to print and count, so
that whatever keeps a validated result keeps its warnings with it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from framework.errors import Location, Problem, RecipeError
from framework.project import display_path
from framework.recipe.checks import WARNING, Violation, run_checks
from framework.recipe.compose import Composed
from framework.recipe.errors_map import problems_from
from framework.recipe.recipe import Recipe


@dataclass(frozen=True)
class Validated:
    composed: Composed
    recipe: Recipe
    warnings: tuple[Problem, ...] = ()  # `file:line: key: warning: ...`, located like errors


def validate_composed(composed: Composed, root: Path | None = None) -> Validated:
    """The recipe, or a RecipeError listing every problem. With the project's `root`, the
    files the recipe names are checked too (the Feast repository's views and features)."""
    try:
        recipe = Recipe.model_validate(composed.config)
    except ValidationError as exc:
        problems = problems_from(exc.errors(include_url=False), composed.config, Recipe, composed.provenance)
        raise RecipeError([_in_recipe_file(p, composed) for p in problems]) from None
    found = run_checks(recipe)
    violations = [v for v in found if v.severity != WARNING]
    if not violations and root is not None:
        violations = feast_violations(recipe, root)
    if violations:
        raise RecipeError([_located(v, composed) for v in violations])
    return Validated(composed, recipe, tuple(_located(v, composed) for v in found if v.severity == WARNING))


def _located(v: Violation, composed: Composed) -> Problem:
    """A violation as a problem at the file:line that set its first key."""
    return _in_recipe_file(Problem(composed.provenance.locate(v.keys[0]), v.keys[0], v.message, v.severity), composed)


def _in_recipe_file(problem: Problem, composed: Composed) -> Problem:
    """A key set nowhere (a missing section) is the recipe file's to add."""
    if problem.location is not None:
        return problem
    return Problem(Location(display_path(composed.source.file), 1), problem.key, problem.message, problem.severity)


def feast_violations(recipe: Recipe, root: Path) -> list[Violation]:
    """`data.source.feast` against the repository's definitions, read without Feast."""
    feast = recipe.data.source.feast if recipe.data is not None else None
    if feast is None:
        return []
    from framework.recipe.feast_catalog import KEY, problems, read_repo
    from framework.recipe.suggest import did_you_mean

    repo = root / feast.repo
    if not repo.is_dir():
        near = did_you_mean(repo.name, (p.name for p in repo.parent.iterdir() if p.is_dir())) if repo.parent.is_dir() else ""
        return [Violation((f"{KEY}.repo",), f"no Feast repository at {display_path(repo)}{near}: give the folder "
                                            "holding the feature definitions (.py files)")]
    found = problems(feast, recipe.data, read_repo(repo), display_path(repo))
    return [Violation((key,), message) for key, message in found]
