"""Composed dict -> `Recipe`: the models first, then the cross-field rules."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from framework.errors import Location, Problem, RecipeError
from framework.project import display_path
from framework.recipe.checks import run_checks
from framework.recipe.compose import Composed
from framework.recipe.errors_map import problems_from
from framework.recipe.recipe import Recipe


@dataclass(frozen=True)
class Validated:
    composed: Composed
    recipe: Recipe


def validate_composed(composed: Composed) -> Validated:
    try:
        recipe = Recipe.model_validate(composed.config)
    except ValidationError as exc:
        problems = problems_from(exc.errors(include_url=False), composed.config, Recipe, composed.provenance)
        raise RecipeError([_in_recipe_file(p, composed) for p in problems]) from None
    violations = run_checks(recipe)
    if violations:
        raise RecipeError(
            [_in_recipe_file(Problem(composed.provenance.locate(v.keys[0]), v.keys[0], v.message), composed)
             for v in violations]
        )
    return Validated(composed, recipe)


def _in_recipe_file(problem: Problem, composed: Composed) -> Problem:
    """A key set nowhere (a missing section) is the recipe file's to add."""
    if problem.location is not None:
        return problem
    return Problem(Location(display_path(composed.source.file), 1), problem.key, problem.message)
