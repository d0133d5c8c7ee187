"""`mlops rollout status|promote|rollback`: inspect or move a rollout by hand; and
`mlops lineage`: from the data to where each registered version is served.
A typer sub-app over framework.api's rollout functions: the registry's champion,
candidate and rejected versions (MLflow aliases) and the rollout record. Each command
hands its result to `finish` (common.py); nothing to promote or roll back is an
`MlopsError` (exit 1).
"""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from framework.cli.common import EnvOption, VersionOption, app, finish, reports_errors

rollout_app = typer.Typer(
    help="Inspect or move a rollout by hand: the registry's champion and candidate (MLflow aliases).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(rollout_app, name="rollout")
RolloutRecipe = Annotated[str, typer.Argument(help="Recipe name or path.")]


@rollout_app.command("status")
@reports_errors
def rollout_status(recipe: RolloutRecipe, env: EnvOption = None, address: Annotated[Optional[str], typer.Option(
        "--address", help="Also show the application on the Ray cluster whose dashboard is at this URL.")] = None) -> None:
    """Champion and candidate versions, and the recorded rollout: strategy, step, weight, last verdict."""
    from framework import api

    finish(api.rollout_status(recipe, env=env, address=address))


@rollout_app.command("promote")
@reports_errors
def rollout_promote(recipe: RolloutRecipe, env: EnvOption = None) -> None:
    """Make the candidate the champion (alias champion -> candidate). Exit 1 when there is nothing to promote."""
    from framework import api

    finish(api.rollout_promote(recipe, env=env))


@rollout_app.command("rollback")
@reports_errors
def rollout_rollback(recipe: RolloutRecipe, env: EnvOption = None) -> None:
    """Reject the candidate (alias rejected -> candidate); the champion stays. Exit 1 when there is no candidate."""
    from framework import api

    finish(api.rollout_rollback(recipe, env=env))


@app.command()
@reports_errors
def lineage(recipe: RolloutRecipe, version: VersionOption = None, env: EnvOption = None) -> None:
    """Data (uri, sha256, git revision) -> MLflow run -> model version -> aliases -> where it is served, per version."""
    from framework import api

    finish(api.lineage(recipe, version, env=env))
