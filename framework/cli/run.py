"""The commands that run a recipe: `apply`, `serve`, `monitor` and `batch`.
Each parses its options, calls framework.api with a rich console on stderr for
progress, and hands the result to `finish` (common.py), which prints it and exits with
its code: apply 1 when the rollout rolled the candidate back (or, under GitHub Actions,
when the training reported no version), monitor 3 on drift. `serve` prints where it
listens as soon as it does, then serves until Ctrl-C (exit 0).
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from framework.cli.common import EnvOption, app, finish, reports_errors, stderr_console

# What Ctrl-C leaves behind, by apply target.
_AFTER_CTRL_C = {
    "local": "apply stopped and left nothing running; run the same command again to resume from the last checkpoint",
    "ray": "apply stopped the Ray job; run the same command again to resume from its last checkpoint",
    "kubernetes": "apply stopped waiting; what it applied stays in the cluster (a job keeps running); "
                  "run the same command again to continue",
}


@app.command()
@reports_errors
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
    no_cache: Annotated[bool, typer.Option("--no-cache", help=(
        "Train even when a finished run had the same inputs (recipe keys, data sha256, code); by default its "
        "model version is reused."))] = False,
) -> None:
    """Generate, then run the recipe: data checks, training, evaluation, gates, registry (or, with --target
    kubernetes, apply its manifests to the cluster)."""
    from framework import api

    waits = None
    if serving_timeout is not None:
        from framework.runtime.kubernetes.apply import Waits

        waits = Waits(serving_s=serving_timeout)
    try:
        result = api.apply(recipe, env=env, target=target, dry_run=dry_run, address=address, console=stderr_console(),
                           waits=waits, register_only=register_only, image_tag=image_tag, skip_training=skip_training,
                           training_only=training_only, head_shares_disk=head_shares_disk,
                           no_cache=no_cache)
    except KeyboardInterrupt:
        raise KeyboardInterrupt(_AFTER_CTRL_C.get(target, "apply stopped")) from None
    finish(result)


@app.command()
@reports_errors
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
        finish(api.serve(recipe, env=env, address=address, head_shares_disk=head_shares_disk))
        return

    def ready(url: str, versions: dict[str, list[str]], routing: str) -> None:
        for line in api.serving_lines(recipe, url, versions, routing):
            print(line, flush=True)

    finish(api.serve(recipe, env=env, host=host, port=port, on_ready=ready))


@app.command()
@reports_errors
def monitor(
    recipe: Annotated[str, typer.Argument(help="Recipe name or path.")],
    env: EnvOption = None,
    current: Annotated[Optional[Path], typer.Option("--current", help="csv or parquet laid out like the training data, instead of the served traffic.")] = None,
    window: Annotated[Optional[str], typer.Option("--window", help="How much served traffic (default monitoring.drift.window), e.g. 6h.")] = None,
    pushgateway: Annotated[Optional[str], typer.Option("--pushgateway", envvar="PUSHGATEWAY_ADDRESS", help="Push model_drift_score to this Pushgateway.")] = None,
) -> None:
    """Drift of served traffic (or a file) against the champion's training reference: exit 0 none, 3 drift."""
    from framework import api

    finish(api.monitor(recipe, env=env, current=current, window=window, pushgateway=pushgateway,
                       console=stderr_console(140)))


class Engine(str, enum.Enum):
    """`mlops batch --engine`."""

    ray = "ray"
    spark = "spark"


@app.command()
@reports_errors
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
    from framework import api

    finish(api.batch(recipe, input_uri, output_uri, env=env, version=version, alias=alias, overwrite=overwrite,
                     engine=engine.value, master=master, console=stderr_console(), address=address,
                     head_shares_disk=head_shares_disk))
