"""The commands a CI pipeline chains: `check-data`, `evaluate` (and its hidden earlier
name `eval`), `gate` and `smoke`.
Each parses its options, calls framework.api and hands the result to `finish`
(common.py): its table goes to stderr, its markdown to the GitHub job summary, its
verdict to stdout and its failures to stderr; a failed check, gate or smoke test exits 1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from framework.cli.common import EnvOption, VersionOption, app, finish, reports_errors, stderr_console


@app.command("check-data")
@reports_errors
def check_data(
    recipe: Annotated[str, typer.Argument(help="Recipe name or path.")],
    env: EnvOption = None,
    report_dir: Annotated[Optional[Path], typer.Option("--report-dir", help=(
        "Where the JSON and HTML report go (default .mlops/reports/<recipe>/<env>/data/)."))] = None,
) -> None:
    """Load the recipe's data and check data.expectations, its target and its nulls (a RAG recipe: its documents). Exit 0 pass, 1 fail."""
    from framework import api

    finish(api.check_data(recipe, env=env, report_dir=report_dir))


@app.command()
@reports_errors
def evaluate(
    recipe: Annotated[str, typer.Argument(help="Recipe name or path.")],
    version: VersionOption = None,
    env: EnvOption = None,
) -> None:
    """Re-score registered version N on the validation split (or evaluation.dataset) and record it in MLflow.
    A RAG recipe (no --version): retrieval recall@k and MRR against evaluation.gates, exit 1 on a failed gate."""
    from framework import api

    console = stderr_console()
    finish(api.evaluate_recipe(recipe, version, env=env, console=console), console)


@app.command("eval", hidden=True)
@reports_errors
def eval_retrieval(
    recipe: Annotated[str, typer.Argument(help="Recipe name or path.")],
    env: EnvOption = None,
) -> None:
    """The earlier name of `mlops evaluate` for a RAG recipe."""
    from framework import api

    console = stderr_console()
    finish(api.evaluate(recipe, env=env, console=console), console)


@app.command()
@reports_errors
def gate(
    recipe: Annotated[str, typer.Argument(help="Recipe name or path.")],
    version: VersionOption = None,
    env: EnvOption = None,
    promote: Annotated[bool, typer.Option("--promote", help=(
        "On a pass, move alias candidate (and champion for rollout direct) to the version."))] = False,
) -> None:
    """Check evaluation.gates against version N's recorded metrics. Exit 1 on a failed gate, and no alias moves;
    with --promote a pass makes the version the candidate."""
    from framework import api

    finish(api.gate(recipe, version, env=env, promote=promote))


@app.command()
@reports_errors
def smoke(
    recipe: Annotated[str, typer.Argument(help="Recipe name or path.")],
    url: Annotated[Optional[str], typer.Option("--url", help="Base URL of the deployed endpoint.")] = None,
    env: EnvOption = None,
    requests: Annotated[Optional[int], typer.Option("--requests", "-n", help="Requests to send (default 50).")] = None,
    version: Annotated[Optional[str], typer.Option("--version", help=(
        "Version whose encoding builds the requests (default: the candidate, else the champion).")) ] = None,
) -> None:
    """Send requests built from validation rows (RAG: the labelled questions) to a deployed endpoint; check
    200s, output shapes, agreement with the registered model offline, and p99 under the alert threshold."""
    from framework import api

    finish(api.smoke(recipe, url or "", env=env, requests=requests, version=version))
