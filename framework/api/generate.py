"""The API of `mlops generate`: render recipes into generated/ and the workflows dir.
Rendering itself lives in framework/generate.py (the targets, the atomic write, the
drift comparison); this module chooses the recipes and envs, gathers their errors
before anything is written, and returns a `GenerateResult`. When the parse and render
caches show that nothing changed (framework/render_cache.py), nothing is rendered.
`apply`, `serve --address` and `batch --address` call `generate` first, since the jobs
they start read only what is on disk.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from framework.api.recipes import as_project, parse_recipe, recipe_envs
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
    from framework import render_cache

    proj = as_project(project)
    names = list(recipes) or proj.recipe_names()
    combos: list[Any] = []  # a parse_cache.Parsed, or the MlopsError of that recipe x env
    for name in names:
        envs: list[str | None] = list(recipe_envs(name, proj)) if all_envs else [env]
        for one_env in envs or [None]:
            try:
                combos.append(parse_recipe(name, one_env, (), proj))
            except MlopsError as error:
                combos.append(error)
    everything = not recipes and all_envs
    warnings = {str(w): w for c in combos if not isinstance(c, MlopsError) for w in c.warnings()}
    if not any(isinstance(c, MlopsError) for c in combos):
        if strict and warnings:
            raise MlopsError([*warnings.values(), Problem(None, "", f"generate --strict: {count(len(warnings), 'warning')} "
                                                                    "counted as errors; nothing written")])
        unchanged = render_cache.unchanged(proj, combos, _every_recipe(proj, _first_of_each(combos)), everything)
        if unchanged is not None:
            return GenerateResult([(p.name, p.environment) for p in combos], [], [], [], unchanged, checked=check,
                                  warnings=list(warnings.values()))
    return _render(proj, combos, everything, check, warnings)


def _render(proj: Project, combos: list[Any], everything: bool, check: bool, warnings: dict[str, Any]) -> GenerateResult:
    from framework import generate as gen
    from framework import render_cache

    rendered, problems, parsed = [], [], []
    for combo in combos:
        if isinstance(combo, MlopsError):
            problems.extend(combo.problems)
            continue
        try:
            one = gen.render_env(proj, combo.validated())
        except MlopsError as error:
            problems.extend(error.problems)
            continue
        rendered.append(one)
        parsed.append(combo)
        render_cache.remember(proj, combo, one)
    if problems:
        raise MlopsError(problems)
    gen.check_no_collisions(rendered)
    expected = gen.expected_outputs(proj, rendered)
    every = _every_recipe(proj, _first_of_each(parsed))
    path, text = gen.actionlint_file(proj, [p.validated().recipe for p in every])
    render_cache.remember_project_file(proj, every, path, text)
    expected[path] = text
    changes = gen.compare(expected, gen.owned_files(proj, rendered, everything))
    if check and changes.any:
        raise DriftError([*warnings.values(), *gen.drift_problems(changes)])
    if not check:
        gen.write(proj, expected, changes)
    unchanged = len(expected) - len(changes.added) - len(changes.changed)
    return GenerateResult([(r.recipe, r.env) for r in rendered], changes.added, changes.changed, changes.removed,
                          unchanged, checked=check, warnings=list(warnings.values()))


def _first_of_each(parsed: list[Any]) -> dict[str, Any]:
    """The first env rendered of each recipe (by its name), which project-wide files use."""
    first: dict[str, Any] = {}
    for one in parsed:
        first.setdefault(one.name, one)
    return first


def _every_recipe(proj: Project, first: dict[str, Any]) -> list[Any]:
    """Every recipe of the project (project-wide files, such as actionlint's config, list
    what all of them use): those rendered, plus the others in their default env."""
    from framework.recipe.source import locate

    have = {locate(proj, name).file for name in first}
    every = list(first.values())
    for name in proj.recipe_names():
        if locate(proj, name).file in have:
            continue
        try:
            every.append(parse_recipe(name, None, (), proj))
        except MlopsError:  # that recipe's own validate/generate reports it; it adds nothing here
            continue
    return every
