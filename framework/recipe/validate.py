"""Composed dict -> `Recipe`: the models first, then the cross-field rules."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from framework.errors import Problem, RecipeError
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
        raise RecipeError(
            problems_from(exc.errors(include_url=False), composed.config, Recipe, composed.provenance)
        ) from None
    violations = run_checks(recipe)
    if violations:
        raise RecipeError(
            [Problem(composed.provenance.locate(v.keys[0]), v.keys[0], v.message) for v in violations]
        )
    return Validated(composed, recipe)
