"""`mlops batch RECIPE --input URI --output URI`: which model, which files, then the engine."""

from __future__ import annotations

from pathlib import Path

from framework.errors import MlopsError, Problem


def resolve_version(recipe, state_dir: Path, version: str | None, alias: str | None) -> str:
    """--version N, --alias A, or the champion."""
    if version is not None and alias is not None:
        raise MlopsError([Problem(None, "--version", "and --alias both pick the model: pass one")])
    if version is not None:
        return version
    from framework.runtime import tracking

    alias = alias or "champion"
    uri = tracking.tracking_uri(recipe, state_dir)
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        found = None  # no store yet: don't create one
    else:
        found = tracking.alias_version(recipe.registered_model, alias, uri=uri)
    if found is None:
        raise MlopsError([Problem(None, "--alias", f"no version of '{recipe.registered_model}' has alias {alias} in {uri}: "
                                                   "pass --version N, or apply and promote one first")])
    return str(found)


def run_batch(recipe, root: Path, state_dir: Path, input_uri: str, output_uri: str, *, version: str | None = None,
              alias: str | None = None, overwrite: bool = False, console=None, address: str | None = None):
    """`address`: a running Ray cluster (the batch RayJob's); default an embedded Ray."""
    from framework.runtime.batch import inputs, ray_engine
    from framework.runtime.registered import open_version

    if recipe.model.kind != "tabular":
        raise MlopsError([Problem(None, "model.kind", f"mlops batch scores tabular models; {recipe.name} is {recipe.model.kind}")])
    files = inputs.list_inputs(input_uri)
    registered = open_version(recipe, state_dir, resolve_version(recipe, state_dir, version, alias))
    passed = [c for c in recipe.data.extra_columns]
    inputs.check_columns(files, registered.pipeline, passed)
    ray_engine.prepare_output(output_uri, ray_engine.run_record(files, registered, passed), overwrite)  # refuse early
    settings = recipe.batch
    actors = ray_engine.start_ray(settings, address)
    if actors != settings.actors and console is not None:
        console.print(f"batch.actors {settings.actors} leaves no CPU for reading here: {actors} actor(s)")
    settings = settings.model_copy(update={"actors": actors})

    def said(done: int, total: int, rows: int) -> None:
        if console is not None:
            console.print(f"part {done}/{total}: {rows} rows")

    try:
        return ray_engine.score(files, registered, output_uri, passed, settings, overwrite=False, on_part=said)
    finally:
        import ray

        ray.shutdown()
