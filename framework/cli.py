"""`mlops`: a thin command line over framework.api (each command parses, calls, prints).

Heavy modules load inside commands, so `mlops --help` stays fast.
"""

from __future__ import annotations

import enum
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
    register_only: Annotated[bool, typer.Option("--register-only", help=(
        "--target local or ray: register the trained version but move no alias and roll nothing out; "
        "`mlops gate` promotes it (the CI pipeline's train job)."))] = False,
    image_tag: Annotated[Optional[str], typer.Option("--image-tag", envvar="MLOPS_IMAGE_TAG", help=(
        "--target kubernetes: run deploy.image at this tag (the commit the pipeline built); the committed "
        "manifests keep the recipe's tag."))] = None,
    skip_training: Annotated[bool, typer.Option("--skip-training", help=(
        "--target kubernetes: leave the training RayJob/PyTorchJob out (the pipeline trained and registered the "
        "model already)."))] = False,
    training_only: Annotated[bool, typer.Option("--training-only", help=(
        "--target kubernetes: apply only the training job (and its config), wait for it, and report the version "
        "it registered (the CI pipeline's train job of a PyTorchJob recipe)."))] = False,
    head_shares_disk: Annotated[bool, typer.Option("--head-shares-disk", envvar="MLOPS_HEAD_SHARES_DISK", help=(
        "--target ray: the Ray head sees this project at the same path (a head on this machine, or a shared "
        "volume), so the job may write the embedded tracking store under .mlops/."))] = False,
) -> None:
    """Generate, then run the recipe: data checks, training, evaluation, gates, registry (or, with --target
    kubernetes, apply its manifests to the cluster)."""
    from rich.console import Console

    from framework import api

    waits = None
    if serving_timeout is not None:
        from framework.runtime.kubernetes.apply import Waits

        waits = Waits(serving_s=serving_timeout)
    console = Console(stderr=True, width=None if sys.stderr.isatty() else 120)
    try:
        result = api.apply(recipe, env=env, target=target, dry_run=dry_run, address=address, console=console, waits=waits,
                           register_only=register_only, image_tag=image_tag, skip_training=skip_training,
                           training_only=training_only, head_shares_disk=head_shares_disk)
    except KeyboardInterrupt:
        raise KeyboardInterrupt(_AFTER_CTRL_C.get(target, "apply stopped")) from None
    if dry_run:
        print(f"{result.recipe} ({result.env}) would run:")
        for number, step in enumerate(result.steps, 1):
            print(f"  {number}. {step}")
        return
    if target == "kubernetes":
        from framework.runtime.kubernetes.apply import summary as kube_summary

        print(f"{result.recipe} ({result.env}): {kube_summary(result.outcome)}")
        if training_only:
            _hand_on_training(result.job_outcome)
        return
    if result.job_status:
        print(f"{result.recipe} ({result.env}): Ray job {result.job_status}")
        if result.trained:
            _hand_on_training(result.job_outcome)
        if result.rollout is not None:
            _report_rollout(result.rollout, result.serve_hint)
        elif result.serve_hint:
            print(result.serve_hint)
        return
    if result.outcome is not None and type(result.outcome).__name__ == "RagOutcome":
        print(result.serve_hint)
        return
    from framework.runtime.training.run import summary

    print(summary(result.outcome))
    _hand_on_training({"run_id": result.outcome.run_id, "model_version": result.outcome.model_version,
                       "tracking_uri": result.outcome.tracking_uri})
    if result.rollout is not None:
        _report_rollout(result.rollout, result.serve_hint)


def _report_rollout(rollout, serve_hint: str) -> None:
    from framework.runtime.rollout.controller import summary as rollout_summary

    print(rollout_summary(rollout))
    if serve_hint:
        print(serve_hint)
    if rollout.decision == "rolled_back":  # CI must see a rejected candidate
        print(f"rollout: version {rollout.candidate} was rolled back; the champion is unchanged", file=sys.stderr)
        raise typer.Exit(1)


def _hand_on_training(outcome: dict | None) -> None:
    """The run id and model version for later jobs ($GITHUB_OUTPUT) and the run's page."""
    from framework.runtime.github_actions import append_summary, write_outputs

    if not outcome or not outcome.get("model_version"):
        if os.environ.get("GITHUB_OUTPUT"):  # later jobs need the version: say why it is missing
            print("train: the job reported no model version (no 'mlops-outcome:' line in its log): does the "
                  "cluster run this version of mlops?", file=sys.stderr)
            raise typer.Exit(1)
        return
    write_outputs({"run-id": outcome["run_id"], "model-version": outcome["model_version"]})
    append_summary(f"### Training\n\nmodel version **{outcome['model_version']}**, MLflow run `{outcome['run_id']}` "
                   f"in `{outcome.get('tracking_uri')}`")


@app.command()
@_reports_errors
def serve(
    recipe: Annotated[str, typer.Argument(help="Recipe name or path.")],
    env: EnvOption = None,
    port: Annotated[Optional[int], typer.Option("--port", "-p", help="Port to listen on (default serving.port).")] = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    address: Annotated[Optional[str], typer.Option("--address", help=(
        "Deploy to the Ray cluster whose dashboard is at this URL (Ray Serve) instead, and return once it runs."))] = None,
    head_shares_disk: Annotated[bool, typer.Option("--head-shares-disk", help=(
        "With --address: the head sees this project at the same path (the embedded store works)."))] = False,
) -> None:
    """Serve the recipe's model locally (KServe v2 / Triton HTTP, /metrics) in the foreground until Ctrl-C, or with
    --address on a Ray cluster."""
    from framework import api

    if address is not None:
        result = api.serve(recipe, env=env, address=address, head_shares_disk=head_shares_disk)
        for model, served in result.versions.items():
            print(f"serving {model} (versions {', '.join(served)}) on the Ray cluster at {result.url}/v2/models/{model}")
        print(f"requests without a version: {result.routing}")
        return

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


def _summarise(markdown: str) -> None:
    from framework.runtime.github_actions import append_summary

    append_summary(markdown)


class Engine(str, enum.Enum):
    """`mlops batch --engine`."""

    ray = "ray"
    spark = "spark"


VersionOption = Annotated[Optional[str], typer.Option("--version", help="Registered model version (1, 2, ...).")]


@app.command()
@_reports_errors
def batch(
    recipe: Annotated[str, typer.Argument(help="Recipe name or path.")],
    input_uri: Annotated[str, typer.Option("--input", help="A csv/parquet file or folder (path, file://, s3://, gs://).")],
    output_uri: Annotated[str, typer.Option("--output", help="Folder of the scored parquet parts (path or URI).")],
    env: EnvOption = None,
    version: Annotated[Optional[str], typer.Option("--version", help="Registered version to score with.")] = None,
    alias: Annotated[Optional[str], typer.Option("--alias", help="Registry alias to score with (default champion).")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace what --output holds.")] = False,
    engine: Annotated[Engine, typer.Option("--engine", help=(
        "ray: an embedded Ray Data; spark: Apache Spark (the extra: pip install 'mlops-recipes[spark]')."))] = Engine.ray,
    master: Annotated[Optional[str], typer.Option("--master", help=(
        "Spark's master URL with --engine spark (default local[*], at most 8 cores)."))] = None,
    address: Annotated[Optional[str], typer.Option("--address", help=(
        "Run as a job on the Ray cluster whose job API is at this URL (input, output and registry where it reaches them)."))] = None,
    head_shares_disk: Annotated[bool, typer.Option("--head-shares-disk", help=(
        "With --address: the head sees this machine's disk at the same paths (local paths, the embedded store)."))] = False,
) -> None:
    """Score a table offline with a registered model on Ray Data or Spark: the model's answers and
    data.extra_columns, one parquet part per input file (a re-run resumes an unfinished run)."""
    from rich.console import Console

    from framework import api

    console = Console(stderr=True, width=None if sys.stderr.isatty() else 120)
    result = api.batch(recipe, input_uri, output_uri, env=env, version=version, alias=alias, overwrite=overwrite,
                       engine=engine.value, master=master, console=console, address=address,
                       head_shares_disk=head_shares_disk)
    resumed = f" ({result.skipped} part(s) from the earlier run)" if result.skipped else ""
    print(f"{result.rows} rows scored by {result.model} version {result.version} in {result.seconds:.1f} s: "
          f"{result.output} ({len(result.parts)} part(s){resumed})")


@app.command("check-data")
@_reports_errors
def check_data(
    recipe: Annotated[str, typer.Argument(help="Recipe name or path.")],
    env: EnvOption = None,
    report_dir: Annotated[Optional[Path], typer.Option("--report-dir", help=(
        "Where the JSON and HTML report go (default .mlops/reports/<recipe>/<env>/data/)."))] = None,
) -> None:
    """Load the recipe's data and check data.expectations, its target and its nulls (a RAG recipe: its documents). Exit 0 pass, 1 fail."""
    from rich.console import Console

    from framework import api
    from framework.project import display_path

    result = api.check_data(recipe, env=env, report_dir=report_dir)
    Console(stderr=True, width=None if sys.stderr.isatty() else 120).print(result.report.rich_table())
    _summarise(result.report.to_markdown())
    print(f"report: {display_path(result.report_dir)}")
    if not result.passed:
        failures = result.report.failures
        for failure in failures:  # `source: key: message`, as apply's data step says it
            print(f"{failure}" if isinstance(failure, str) else f"{result.report.source}: {failure.key}: "
                  f"{failure.message}", file=sys.stderr)
        raise typer.Exit(1)
    print(f"{result.recipe} ({result.env}): data passed its checks")


@app.command()
@_reports_errors
def evaluate(
    recipe: Annotated[str, typer.Argument(help="Recipe name or path.")],
    version: VersionOption = None,
    env: EnvOption = None,
) -> None:
    """Re-score registered version N on the validation split (or evaluation.dataset) and record it in MLflow.
    A RAG recipe (no --version): retrieval recall@k and MRR against evaluation.gates, exit 1 on a failed gate."""
    from framework import api

    kind = api.load_recipe(recipe, env).recipe.model.kind
    if kind != "tabular":
        if version is not None:
            raise _option_error("--version", f"{recipe} is an {kind} recipe: its retrieval is evaluated, not a version")
        return _evaluate_retrieval(recipe, env)
    if version is None:
        raise _option_error("--version", "which registered version to evaluate: e.g. --version 3 (the train job's output)")
    result = api.evaluate_version(recipe, version, env=env)
    for name, value in result.rows_table():
        print(f"  {name:<16} {value}")
    _summarise(result.to_markdown())
    print(f"{result.recipe} ({result.env}): version {result.version} on {result.rows} rows of {result.dataset}; "
          f"MLflow run {result.run_id}")


def _option_error(option: str, message: str) -> Exception:
    from framework.errors import MlopsError, Problem

    return MlopsError([Problem(None, option, message)])


def _evaluate_retrieval(recipe: str, env: str | None) -> None:
    from rich.console import Console

    from framework import api

    console = Console(stderr=True, width=None if sys.stderr.isatty() else 120)
    report, gates = api.evaluate(recipe, env=env, console=console)
    if hasattr(gates, "rich_table"):
        console.print(gates.rich_table())
        _summarise(gates.to_markdown("Retrieval gates"))
    verdict = "gates passed" if gates.passed else "gates FAILED"
    print(f"{recipe}: recall@{report.k} {report.recall_at_k:.3f}, MRR {report.mrr:.3f} on {report.questions} questions: {verdict}")
    for row in report.rows:
        if not row.get("hit"):
            print(f"  missed: {row['question']} (expected {', '.join(row['expected'])})")
    if not gates.passed:
        raise typer.Exit(1)


@app.command("eval", hidden=True)
@_reports_errors
def eval_retrieval(
    recipe: Annotated[str, typer.Argument(help="Recipe name or path.")],
    env: EnvOption = None,
) -> None:
    """The earlier name of `mlops evaluate` for a RAG recipe."""
    _evaluate_retrieval(recipe, env)


@app.command()
@_reports_errors
def gate(
    recipe: Annotated[str, typer.Argument(help="Recipe name or path.")],
    version: VersionOption = None,
    env: EnvOption = None,
    promote: Annotated[bool, typer.Option("--promote", help=(
        "On a pass, move alias candidate (and champion for rollout direct) to the version."))] = False,
) -> None:
    """Check evaluation.gates against version N's recorded metrics. Exit 1 on a failed gate, and no alias moves;
    with --promote a pass makes the version the candidate."""
    from rich.console import Console

    from framework import api

    if version is None:
        raise _option_error("--version", "which registered version to gate: e.g. --version 3 (the train job's output)")
    outcome = api.gate(recipe, version, env=env, promote=promote)
    Console(stderr=True, width=None if sys.stderr.isatty() else 120).print(outcome.report.rich_table())
    _summarise(outcome.report.to_markdown(f"Quality gates of version {outcome.version}"))
    print(f"{outcome.recipe} ({outcome.env}): version {outcome.version} from {', '.join(outcome.sources)}")
    if not outcome.report.passed:
        for result in outcome.report.failures:
            print(f"{result.key}: {result.message()}", file=sys.stderr)
        print(f"gate: version {outcome.version} failed {len(outcome.report.failures)} gate(s); no alias moved", file=sys.stderr)
        raise typer.Exit(1)
    moved = f"is now {' and '.join(outcome.promoted)}" if outcome.promoted else "passed (no alias moved without --promote)"
    print(f"gates passed: version {outcome.version} {moved}")


@app.command()
@_reports_errors
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

    report = api.smoke(recipe, url or "", env=env, requests=requests, version=version)
    _summarise(report.to_markdown())
    print(report.summary())
    if not report.passed:
        for problem in report.problems():
            print(f"smoke: {problem}", file=sys.stderr)
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
def rollout_status(recipe: RolloutRecipe, env: EnvOption = None, address: Annotated[Optional[str], typer.Option(
        "--address", help="Also show the application on the Ray cluster whose dashboard is at this URL.")] = None) -> None:
    """Champion and candidate versions, and the recorded rollout: strategy, step, weight, last verdict."""
    from framework import api
    from framework.runtime.rollout.state import describe

    status = api.rollout_status(recipe, env=env, address=address)
    print(f"{status.recipe} ({status.env}): registered model '{status.registered_model}'")
    print(f"  champion:  {_version(status.champion)}")
    print(f"  candidate: {_version(status.candidate)}")
    print(f"  rejected:  {_version(status.rejected)}")
    for line in describe(status.state):
        print(f"  {line}")
    if status.cluster:
        print(f"  serving:   {status.cluster}")


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
