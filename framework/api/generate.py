"""The API of `mlops generate`: render recipes into generated/ and the workflows dir.
Rendering itself lives in framework/generate.py (the targets, the atomic write, the
drift comparison); this module chooses the recipes and envs, gathers their errors
before anything is written, and returns a `GenerateResult`. `apply`, `serve --address`
and `batch --address` call `generate` first, since the jobs they start read only what is
on disk.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from framework.api.recipes import as_project, load_recipe, recipe_envs
from framework.api.results import GenerateResult, count
from framework.errors import DriftError, MlopsError, Problem
from framework.project import Project


def generate(
    recipes: Sequence[str] = (),
    env: str | None = None,
    all_envs: bool = False,
    check: bool = False,
    project: Project | Path | None = None,
    strict: bool = False,
) -> GenerateResult:
    """Render recipes (all when none are named) into generated/ and the workflows dir.

    With `check`, nothing is written and a DriftError lists what differs (added,
    changed with a short diff, stale). Recipe errors raise before anything is written;
    the recipes' warnings (each line once) come with the result, or with `strict`
    raise as errors, nothing written.
    """
    from framework import generate as gen

    proj = as_project(project)
    names = list(recipes) or proj.recipe_names()
    rendered, problems, validated, warnings = [], [], {}, {}
    for name in names:
        envs: list[str | None] = list(recipe_envs(name, proj)) if all_envs else [env]
        for one_env in envs or [None]:
            try:
                loaded = load_recipe(name, one_env, (), proj)
                rendered.append(gen.render_env(proj, loaded))
                validated.setdefault(loaded.recipe.name, loaded.recipe)
                warnings.update((str(w), w) for w in loaded.warnings)
            except MlopsError as error:
                problems.extend(error.problems)
    if problems:
        raise MlopsError(problems)
    if strict and warnings:
        raise MlopsError([*warnings.values(), Problem(None, "", f"generate --strict: {count(len(warnings), 'warning')} "
                                                                "counted as errors; nothing written")])
    gen.check_no_collisions(rendered)
    expected = gen.expected_outputs(proj, rendered)
    path, text = gen.actionlint_file(proj, _every_recipe(proj, validated))
    expected[path] = text
    everything = not recipes and all_envs
    changes = gen.compare(expected, gen.owned_files(proj, rendered, everything))
    if check and changes.any:
        raise DriftError([*warnings.values(), *gen.drift_problems(changes)])
    if not check:
        gen.write(proj, expected, changes)
    unchanged = len(expected) - len(changes.added) - len(changes.changed)
    return GenerateResult([(r.recipe, r.env) for r in rendered], changes.added, changes.changed, changes.removed,
                          unchanged, checked=check, warnings=list(warnings.values()))


def _every_recipe(proj: Project, loaded: dict[str, Any]) -> list[Any]:
    """Every recipe of the project (project-wide files, such as actionlint's config, list
    what all of them use): those rendered, plus the others in their default env."""
    from framework.recipe.compose import locate

    have = {locate(proj, name).file for name in loaded}
    recipes = list(loaded.values())
    for name in proj.recipe_names():
        if locate(proj, name).file in have:
            continue
        try:
            recipes.append(load_recipe(name, None, (), proj).recipe)
        except MlopsError:  # that recipe's own validate/generate reports it; it adds nothing here
            continue
    return recipes
