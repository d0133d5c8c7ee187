"""The recipe commands: `validate`, `show`, `schema`, `generate` and `plan`.
Each parses its arguments, calls framework.api and hands the result to `finish`
(common.py), which prints it and exits with its code: validate 1 when a recipe is
invalid, plan 2 when something would change, and a DriftError (generate --check,
schema --check) 2. validate and generate print the recipes' warnings
(`file:line: key: warning: ...`, stderr) and count them; `--strict` makes them errors.
`show` colours its YAML on a terminal.
"""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from framework.cli import core
from framework.cli.common import EnvOption, app, finish, reports_errors, split_args

StrictOption = Annotated[bool, typer.Option("--strict", help="Warnings (deprecated values) are errors: exit 1 (for CI).")]
NoCacheOption = Annotated[bool, typer.Option(
    "--no-cache", help="Compose and validate afresh, neither reading nor writing the parse cache (or MLOPS_NO_CACHE=1).")]


@app.command()
@reports_errors
def validate(
    args: Annotated[Optional[list[str]], typer.Argument(metavar="[RECIPE]... [OVERRIDE]...", help="Recipes (all when none) and Hydra overrides.")] = None,
    env: EnvOption = None,
    all_envs: Annotated[bool, typer.Option("--all-envs", help="Validate every env overlay of each recipe.")] = False,
    strict: StrictOption = False,
    no_cache: NoCacheOption = False,
) -> None:
    """Compose and validate recipes. Exit 0 when all are valid (warnings allowed, unless --strict), 1 otherwise."""
    from framework import api

    if no_cache:
        core.no_cache()

    recipes, overrides = split_args(args)
    finish(api.validate(recipes, env=env, overrides=overrides, all_envs=all_envs, strict=strict))


@app.command()
@reports_errors
def show(
    recipe: Annotated[str, typer.Argument(help="Recipe name or path.")],
    overrides: Annotated[Optional[list[str]], typer.Argument(metavar="[OVERRIDE]...", help="Hydra overrides.")] = None,
    env: EnvOption = None,
    provenance: Annotated[bool, typer.Option("--provenance", "-p", help="Show which file:line set each key.")] = False,
) -> None:
    """Print the resolved recipe (defaults filled in), optionally with provenance."""
    from framework import api

    result = api.show(recipe, env=env, overrides=overrides or [], provenance=provenance)
    if not provenance and sys.stdout.isatty():  # colour for people; plain YAML for pipes and files
        from rich.console import Console
        from rich.syntax import Syntax

        Console().print(Syntax(result.yaml, "yaml", background_color="default"))
        return
    finish(result)


@app.command()
@reports_errors
def schema(
    check: Annotated[bool, typer.Option("--check", help="Write nothing; exit 2 if the committed schemas differ.")] = False,
) -> None:
    """Export the JSON Schemas of the recipe language into schemas/."""
    from framework import api

    finish(api.check_schemas() if check else api.write_schemas())


@app.command()
@reports_errors
def generate(
    recipes: Annotated[Optional[list[str]], typer.Argument(metavar="[RECIPE]...", help="Recipes (all when none).")] = None,
    env: EnvOption = None,
    all_envs: Annotated[bool, typer.Option("--all-envs", help="Generate every env overlay of each recipe.")] = False,
    check: Annotated[bool, typer.Option("--check", help="Write nothing; exit 2 if committed output differs.")] = False,
    strict: StrictOption = False,
    no_cache: NoCacheOption = False,
) -> None:
    """Write generated/<recipe>/<env>/ and the workflows; --check reports drift (exit 2), --strict fails on warnings."""
    from framework import api

    if no_cache:
        core.no_cache()

    finish(api.generate(recipes or [], env=env, all_envs=all_envs, check=check, strict=strict))


@app.command()
@reports_errors
def plan(
    recipe: Annotated[str, typer.Argument(help="Recipe name or path.")],
    env: EnvOption = None,
) -> None:
    """What apply would change, in domain terms. Exit 0 when nothing, 2 when something."""
    from framework import api

    finish(api.plan(recipe, env=env))
