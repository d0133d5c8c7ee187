"""`mlops`: a thin command line over framework.api (each command parses, calls, prints).

Heavy modules load inside commands, so `mlops --help` stays fast.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer

app = typer.Typer(
    name="mlops",
    help="Turn recipes into running ML systems: validate, explain, generate and plan recipes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

EnvOption = Annotated[Optional[str], typer.Option("--env", "-e", help="Env overlay to compose with (dev, staging, prod).")]


def _reports_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Print MlopsErrors as `file:line: key.path: message` lines; exit with their code."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from framework.errors import MlopsError, exit_code_for

        try:
            return command(*args, **kwargs)
        except MlopsError as error:
            for problem in error.problems:
                print(problem, file=sys.stderr)
            raise typer.Exit(exit_code_for(error)) from None
        except KeyboardInterrupt as interrupt:
            print(f"interrupted: {interrupt.args[0] if interrupt.args else command.__name__ + ' stopped'}", file=sys.stderr)
            raise typer.Exit(130) from None

    return wrapper


def _split_args(args: list[str] | None) -> tuple[list[str], list[str]]:
    """Recipes are names or paths; overrides are Hydra `key=value`, `+key=v`, `~key`."""
    recipes, overrides = [], []
    for arg in args or []:
        (overrides if "=" in arg or arg.startswith("~") else recipes).append(arg)
    return recipes, overrides


@app.command()
@_reports_errors
def validate(
    args: Annotated[Optional[list[str]], typer.Argument(metavar="[RECIPE]... [OVERRIDE]...", help="Recipes (all when none) and Hydra overrides.")] = None,
    env: EnvOption = None,
    all_envs: Annotated[bool, typer.Option("--all-envs", help="Validate every env overlay of each recipe.")] = False,
) -> None:
    """Compose and validate recipes. Exit 0 when all are valid, 1 otherwise."""
    from framework import api

    recipes, overrides = _split_args(args)
    result = api.validate(recipes, env=env, overrides=overrides, all_envs=all_envs)
    for status in result.statuses:
        where = f"{status.recipe} ({status.env})" if status.env else status.recipe
        if status.ok:
            print(f"ok       {where}")
        else:
            print(f"invalid  {where}", file=sys.stderr)
            for problem in status.problems:
                print(problem, file=sys.stderr)
    if not result.ok:
        raise typer.Exit(1)


@app.command()
@_reports_errors
def show(
    recipe: Annotated[str, typer.Argument(help="Recipe name or path.")],
    overrides: Annotated[Optional[list[str]], typer.Argument(metavar="[OVERRIDE]...", help="Hydra overrides.")] = None,
    env: EnvOption = None,
    provenance: Annotated[bool, typer.Option("--provenance", "-p", help="Show which file:line set each key.")] = False,
) -> None:
    """Print the resolved recipe (defaults filled in), optionally with provenance."""
    from framework import api

    result = api.show(recipe, env=env, overrides=overrides or [])
    if provenance:
        from framework.render_text import provenance_lines

        print("\n".join(provenance_lines(result)))
    else:
        from framework.render_text import to_yaml

        text = to_yaml(result.resolved)
        if sys.stdout.isatty():  # colour for people; plain YAML for pipes and files
            from rich.console import Console
            from rich.syntax import Syntax

            Console().print(Syntax(text, "yaml", background_color="default"))
        else:
            print(text, end="")


@app.command()
@_reports_errors
def schema(
    check: Annotated[bool, typer.Option("--check", help="Write nothing; exit 2 if the committed schemas differ.")] = False,
) -> None:
    """Export the JSON Schemas of the recipe language into schemas/."""
    from framework import api

    if check:
        api.check_schemas()
        print("schemas are up to date")
    else:
        from framework.project import display_path

        for path in api.write_schemas().written:
            print(f"wrote {display_path(path)}")


@app.command()
@_reports_errors
def generate(
    recipes: Annotated[Optional[list[str]], typer.Argument(metavar="[RECIPE]...", help="Recipes (all when none).")] = None,
    env: EnvOption = None,
    all_envs: Annotated[bool, typer.Option("--all-envs", help="Generate every env overlay of each recipe.")] = False,
    check: Annotated[bool, typer.Option("--check", help="Write nothing; exit 2 if committed output differs.")] = False,
) -> None:
    """Write generated/<recipe>/<env>/ and the workflows; --check reports drift (exit 2)."""
    from framework import api
    from framework.project import display_path

    result = api.generate(recipes or [], env=env, all_envs=all_envs, check=check)
    for kind, paths in (("added", result.added), ("changed", result.changed), ("removed", result.removed)):
        for path in paths:
            print(f"{kind:8} {display_path(path)}")
    combos = ", ".join(f"{r} ({e})" for r, e in result.recipes)
    verdict = "up to date" if check else f"{len(result.added) + len(result.changed) + len(result.removed)} files changed"
    print(f"{verdict}: {combos}")


@app.command()
@_reports_errors
def plan(
    recipe: Annotated[str, typer.Argument(help="Recipe name or path.")],
    env: EnvOption = None,
) -> None:
    """What apply would change, in domain terms. Exit 0 when nothing, 2 when something."""
    from framework import api

    result = api.plan(recipe, env=env)
    if not result.changes:
        print(f"{result.recipe} ({result.env}): no changes")
        return
    print(f"{result.recipe} ({result.env}):")
    for line in result.lines:
        print(f"  {line}")
    raise typer.Exit(2)


# What Ctrl-C leaves behind, by apply target.
_AFTER_CTRL_C = {
    "local": "apply stopped and left nothing running; run the same command again to resume from the last checkpoint",
    "ray": "apply stopped the Ray job; run the same command again to resume from its last checkpoint",
    "kubernetes": "apply stopped waiting; what it applied stays in the cluster (a job keeps running); "
                  "run the same command again to continue",
}


@app.command()
@_reports_errors
def apply(
    recipe: Annotated[str, typer.Argument(help="Recipe name or path.")],
    env: EnvOption = None,
    target: Annotated[str, typer.Option("--target", help=(
        "local (embedded Ray, MLflow on sqlite), ray (a Ray cluster at --address) or kubernetes (server-side apply "
        "of generated/<recipe>/<env>/ to the current kubeconfig's cluster, in dependency order, waiting for the "
        "training job and for serving)."))] = "local",
    address: Annotated[Optional[str], typer.Option("--address", help="Ray job API of the cluster (--target ray).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the steps (with --target kubernetes: the objects, in order); run nothing.")] = False,
    serving_timeout: Annotated[Optional[float], typer.Option("--serving-timeout", metavar="SECONDS", help=(
        "--target kubernetes: how long to wait for serving to be ready (default 600; the training job gets its "
        "training.timeout)."))] = None,
) -> None:
    """Generate, then run the recipe: data checks, training, evaluation, gates, registry (or, with --target
    kubernetes, apply its manifests to the cluster)."""
    from rich.console import Console

    from framework import api

    waits = None
    if serving_timeout is not None:
        from framework.runtime.kubernetes_apply import Waits

        waits = Waits(serving_s=serving_timeout)
    console = Console(stderr=True, width=None if sys.stderr.isatty() else 120)
    try:
        result = api.apply(recipe, env=env, target=target, dry_run=dry_run, address=address, console=console, waits=waits)
    except KeyboardInterrupt:
        raise KeyboardInterrupt(_AFTER_CTRL_C.get(target, "apply stopped")) from None
    if dry_run:
        print(f"{result.recipe} ({result.env}) would run:")
        for number, step in enumerate(result.steps, 1):
            print(f"  {number}. {step}")
        return
    if target == "kubernetes":
        from framework.runtime.kubernetes_apply import summary as kube_summary

        print(f"{result.recipe} ({result.env}): {kube_summary(result.outcome)}")
        return
    if result.job_status:
        print(f"{result.recipe} ({result.env}): Ray job {result.job_status}")
        return
    if result.outcome is not None and type(result.outcome).__name__ == "RagOutcome":
        print(result.serve_hint)
        return
    from framework.runtime.train import summary

    print(summary(result.outcome))
    if result.rollout is not None:
        from framework.runtime.rollout.controller import summary as rollout_summary

        print(rollout_summary(result.rollout))
        if result.serve_hint:
            print(result.serve_hint)
        if result.rollout.decision == "rolled_back":  # CI must see a rejected candidate
            print(f"rollout: version {result.rollout.candidate} was rolled back; the champion is unchanged", file=sys.stderr)
            raise typer.Exit(1)


@app.command()
@_reports_errors
def serve(
    recipe: Annotated[str, typer.Argument(help="Recipe name or path.")],
    env: EnvOption = None,
    port: Annotated[Optional[int], typer.Option("--port", "-p", help="Port to listen on (default serving.port).")] = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
) -> None:
    """Serve the recipe's model locally (KServe v2 / Triton HTTP, /metrics) in the foreground until Ctrl-C."""
    from framework import api

    def ready(url: str, versions: dict[str, list[str]], routing: str) -> None:
        if not versions:  # an LLM recipe: the RAG service
            print(f"serving {recipe} at {url}/query (POST {{\"question\": ..., \"top_k\": ...}})", flush=True)
            print(routing, flush=True)
            print(f"metrics at {url}/metrics; Ctrl-C stops", flush=True)
            return
        for model, served in versions.items():
            print(f"serving {model} (versions {', '.join(served)}) at {url}/v2/models/{model}", flush=True)
        print(f"requests without a version: {routing}", flush=True)
        print(f"metrics at {url}/metrics; Ctrl-C stops", flush=True)

    result = api.serve(recipe, env=env, host=host, port=port, on_ready=ready)
    print(f"stopped serving {result.recipe} ({result.env})")


@app.command()
@_reports_errors
def monitor(
    recipe: Annotated[str, typer.Argument(help="Recipe name or path.")],
    env: EnvOption = None,
    current: Annotated[Optional[Path], typer.Option("--current", help="csv or parquet laid out like the training data, instead of the served traffic.")] = None,
    window: Annotated[Optional[str], typer.Option("--window", help="How much served traffic (default monitoring.drift.window), e.g. 6h.")] = None,
    pushgateway: Annotated[Optional[str], typer.Option("--pushgateway", envvar="PUSHGATEWAY_ADDRESS", help="Push model_drift_score to this Pushgateway.")] = None,
) -> None:
    """Drift of served traffic (or a file) against the champion's training reference: exit 0 none, 3 drift."""
    from rich.console import Console

    from framework import api
    from framework.runtime.monitor.run import summary_lines

    console = Console(stderr=True, width=None if sys.stderr.isatty() else 140)
    out = api.monitor(recipe, env=env, current=current, window=window, pushgateway=pushgateway, console=console)
    print("\n".join(summary_lines(out)))
    if out.exit_code:
        raise typer.Exit(out.exit_code)


@app.command("eval")
@_reports_errors
def evaluate(
    recipe: Annotated[str, typer.Argument(help="Recipe name or path.")],
    env: EnvOption = None,
) -> None:
    """Retrieval quality of an LLM recipe (recall@k, MRR on evaluation.retrieval.questions) against evaluation.gates: exit 0 pass, 1 fail."""
    from rich.console import Console

    from framework import api

    console = Console(stderr=True, width=None if sys.stderr.isatty() else 120)
    report, gates = api.evaluate(recipe, env=env, console=console)
    if hasattr(gates, "rich_table"):
        console.print(gates.rich_table())
    verdict = "gates passed" if gates.passed else "gates FAILED"
    print(f"{recipe}: recall@{report.k} {report.recall_at_k:.3f}, MRR {report.mrr:.3f} on {report.questions} questions: {verdict}")
    for row in report.rows:
        if not row.get("hit"):
            print(f"  missed: {row['question']} (expected {', '.join(row['expected'])})")
    if not gates.passed:
        raise typer.Exit(1)


rollout_app = typer.Typer(
    help="Inspect or move a rollout by hand: the registry's champion and candidate (MLflow aliases).",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(rollout_app, name="rollout")
RolloutRecipe = Annotated[str, typer.Argument(help="Recipe name or path.")]


def _version(version: str | None) -> str:
    return f"version {version}" if version is not None else "none"


@rollout_app.command("status")
@_reports_errors
def rollout_status(recipe: RolloutRecipe, env: EnvOption = None) -> None:
    """Champion and candidate versions, and the recorded rollout: strategy, step, weight, last verdict."""
    from framework import api
    from framework.runtime.rollout.state import describe

    status = api.rollout_status(recipe, env=env)
    print(f"{status.recipe} ({status.env}): registered model '{status.registered_model}'")
    print(f"  champion:  {_version(status.champion)}")
    print(f"  candidate: {_version(status.candidate)}")
    print(f"  rejected:  {_version(status.rejected)}")
    for line in describe(status.state):
        print(f"  {line}")


@rollout_app.command("promote")
@_reports_errors
def rollout_promote(recipe: RolloutRecipe, env: EnvOption = None) -> None:
    """Make the candidate the champion (alias champion -> candidate). Exit 1 when there is nothing to promote."""
    from framework import api

    change = api.rollout_promote(recipe, env=env)
    print(f"{change.recipe} ({change.env}): promoted version {change.version} to champion "
          f"(was {_version(change.previous_champion)})")


@rollout_app.command("rollback")
@_reports_errors
def rollout_rollback(recipe: RolloutRecipe, env: EnvOption = None) -> None:
    """Reject the candidate (alias rejected -> candidate); the champion stays. Exit 1 when there is no candidate."""
    from framework import api

    change = api.rollout_rollback(recipe, env=env)
    print(f"{change.recipe} ({change.env}): rolled back version {change.version} (alias rejected); "
          f"champion stays {_version(change.champion)}")


def main() -> None:
    # pydantic scans every installed distribution for plugins on first use (~25 ms of
    # start-up); the CLI uses none. A user can still enable them by setting the variable.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    app()


if __name__ == "__main__":
    main()
