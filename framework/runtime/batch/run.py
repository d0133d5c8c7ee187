"""`mlops batch RECIPE --input URI --output URI`: which model, which files, then the engine."""

from __future__ import annotations

import os
from pathlib import Path

from framework.errors import MlopsError, Problem


def resolve_version(recipe, state_dir: Path, version: str | None, alias: str | None) -> str:
    """--version N, --alias A, or the champion."""
    if version is not None and alias is not None:
        raise MlopsError([Problem(None, "--version", "and --alias both pick the model: pass one")])
    if version is not None:
        return version
    from framework.contracts.registry import ALIAS_CHAMPION
    from framework.runtime import tracking

    alias = alias or ALIAS_CHAMPION
    uri = tracking.tracking_uri(recipe, state_dir)
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        found = None  # no store yet: don't create one
    else:
        found = tracking.alias_version(recipe.registered_model, alias, uri=uri)
    if found is None:
        raise MlopsError([Problem(None, "--alias", f"no version of '{recipe.registered_model}' has alias {alias} in {uri}: "
                                                   "pass --version N, or apply and promote one first")])
    return str(found)


ENGINES = ("ray", "spark")


def run_batch(recipe, root: Path, state_dir: Path, input_uri: str, output_uri: str, *, version: str | None = None,
              alias: str | None = None, overwrite: bool = False, engine: str = "ray", master: str | None = None,
              console=None, address: str | None = None):
    """`address`: a running Ray cluster (the batch RayJob's); default an embedded Ray."""
    from framework.runtime.batch import inputs, parts
    from framework.runtime.registered import open_version

    if engine not in ENGINES:
        raise MlopsError([Problem(None, "--engine", f"unknown engine '{engine}': use {' or '.join(ENGINES)}")])
    if master is not None and engine != "spark":
        raise MlopsError([Problem(None, "--master", "is Spark's master URL: pass it with --engine spark")])
    if engine == "spark":
        from framework.runtime.batch import spark_engine

        spark_engine.check_installed()
    if recipe.model.kind != "tabular":
        raise MlopsError([Problem(None, "model.kind", f"mlops batch scores tabular models; {recipe.name} is {recipe.model.kind}")])
    files = inputs.list_inputs(input_uri)
    registered = open_version(recipe, state_dir, resolve_version(recipe, state_dir, version, alias))
    passed = [c for c in recipe.data.extra_columns]
    inputs.check_columns(files, registered.pipeline, passed)
    fs, folder = parts.prepare_output(output_uri, parts.run_record(files, registered, passed), overwrite)

    def said(done: int, total: int, rows: int) -> None:
        if console is not None:
            console.print(f"part {done}/{total}: {rows} rows")

    if engine == "spark":
        scorer = spark_engine.SparkEngine(registered, passed, recipe.batch, master)
    else:
        from framework.runtime.batch.ray_engine import RayEngine

        scorer = RayEngine(registered, passed, recipe.batch, address)
    try:
        scorer.start()
        if engine == "ray" and scorer.actors != recipe.batch.actors and console is not None:
            console.print(f"batch.actors {recipe.batch.actors} does not fit the {os.cpu_count()} CPU(s) here: "
                          f"{scorer.actors} actor(s)")
        elif engine == "spark" and console is not None:
            console.print(f"spark on {scorer.master}")
        return parts.write_parts(files, registered, passed, fs, folder, scorer, output=output_uri, on_part=said)
    finally:
        scorer.stop()
