"""`mlops batch` on Ray Data: read in streaming, score with a pool of Predictor actors,
write one parquet part per input file.

Partitioned and resumable: `<output>/part-<n>.parquet` is written under a hidden name
and moved into place when its input file is done, so a re-run after a crash skips the
parts that exist; `_run.json` (written first) says which model and inputs the parts
belong to, and `_manifest.json` (written last) lists every part with its row count.
Each part carries the model's name and version in its parquet metadata.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from framework.errors import MlopsError, Problem
from framework.runtime.batch.inputs import InputFile

RUN_FILE, MANIFEST_FILE = "_run.json", "_manifest.json"


@dataclass
class BatchResult:
    output: str
    model: str
    version: str
    rows: int = 0
    parts: list[dict[str, Any]] = field(default_factory=list)
    skipped: int = 0  # parts a previous run had finished
    seconds: float = 0.0


def _output_fs(uri: str):
    import fsspec

    if "://" in uri and not uri.startswith("file://"):
        fs, path = fsspec.core.url_to_fs(uri)
        return fs, path
    return fsspec.filesystem("file"), str(Path(uri.removeprefix("file://")).resolve())


def read_result(uri: str) -> BatchResult:
    """The finished run at `uri`, from its manifest (a run on a cluster, read back)."""
    fs, folder = _output_fs(uri)
    with fs.open(f"{folder}/{MANIFEST_FILE}", "r") as handle:
        manifest = json.load(handle)
    return BatchResult(uri, manifest["model"], str(manifest["version"]), manifest["rows"], manifest["parts"])


def run_record(files: list[InputFile], registered, passed: list[str]) -> dict[str, Any]:
    """What a run's parts belong to: a re-run resumes only the same model on the same inputs."""
    return {"model": registered.name, "version": registered.version, "inputs": [f.path for f in files],
            "passed": list(passed)}


def prepare_output(uri: str, run: dict[str, Any], overwrite: bool):
    """(filesystem, folder) ready for this run: new, resumed (same model and inputs, not
    finished) or, with overwrite, emptied; anything else is refused in one line."""
    fs, folder = _output_fs(uri)
    if fs.exists(folder) and fs.ls(folder):
        if overwrite:
            fs.rm(folder, recursive=True)
        else:
            previous = None
            if fs.exists(f"{folder}/{RUN_FILE}"):
                with fs.open(f"{folder}/{RUN_FILE}", "r") as handle:
                    previous = json.load(handle)
            finished = fs.exists(f"{folder}/{MANIFEST_FILE}")
            if previous != run or finished:
                why = "holds a finished run" if finished and previous == run else "exists"
                raise MlopsError([Problem(None, "--output", f"{uri} {why}: pass --overwrite to replace it"
                                          + ("" if finished else ", or re-run the same command to resume its run"))])
    fs.makedirs(folder, exist_ok=True)
    with fs.open(f"{folder}/{RUN_FILE}", "w") as handle:
        json.dump(run, handle, indent=2, sort_keys=True)
    return fs, folder


def score(files: list[InputFile], registered, output: str, passed: list[str], settings, *, overwrite: bool = False,
          on_part=None) -> BatchResult:
    """Score every input file with the registered version; Ray is initialised by the caller."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import ray
    from ray.data import ActorPoolStrategy, DataContext

    from framework.runtime.batch.predictor import Predictor

    began = time.perf_counter()
    fs, folder = prepare_output(output, run_record(files, registered, passed), overwrite)
    context = DataContext.get_current()
    context.execution_options.preserve_order = True  # output rows in input order
    context.enable_progress_bars = False  # one line per part instead (on_part)
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    metadata = {b"mlops.model": registered.name.encode(), b"mlops.version": registered.version.encode()}
    model = Path(registered.model_path).read_bytes()
    result = BatchResult(output, registered.name, registered.version)
    for index, source in enumerate(files):
        name = f"part-{index:05d}.parquet"
        final = f"{folder}/{name}"
        if fs.exists(final):  # finished by a run that crashed later
            rows = pq.ParquetFile(fs.open(final, "rb")).metadata.num_rows
            result.parts.append({"part": name, "input": source.path, "rows": rows})
            result.rows += rows
            result.skipped += 1
            continue
        read = ray.data.read_parquet if source.format == "parquet" else ray.data.read_csv
        scored = read(source.path).map_batches(
            Predictor,
            # The model's bytes, not its path: the actors may run on other nodes than
            # this driver, which downloaded it (the batch RayJob's workers).
            fn_constructor_kwargs={"model": model, "pipeline": registered.pipeline.to_dict(), "passed": passed},
            batch_size=settings.batch_size,
            batch_format="pandas",
            compute=ActorPoolStrategy(size=settings.actors),
            num_cpus=settings.cpus_per_actor,
        )
        hidden = f"{folder}/.{name}.tmp"
        rows, writer = 0, None
        with fs.open(hidden, "wb") as handle:
            for batch in scored.iter_batches(batch_format="pyarrow", batch_size=None):
                table = batch if isinstance(batch, pa.Table) else pa.Table.from_pandas(batch, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(handle, table.schema.with_metadata(metadata))
                writer.write_table(table.replace_schema_metadata(metadata))
                rows += table.num_rows
            if writer is not None:
                writer.close()
        if writer is None:  # an input with no rows: an empty part, so counts still add up
            fs.rm(hidden)
            with fs.open(hidden, "wb") as handle:
                pq.write_table(pa.table({}).replace_schema_metadata(metadata), handle)
        fs.mv(hidden, final)
        result.parts.append({"part": name, "input": source.path, "rows": rows})
        result.rows += rows
        if on_part is not None:
            on_part(index + 1, len(files), rows)
    with fs.open(f"{folder}/{MANIFEST_FILE}", "w") as handle:
        json.dump({**run_record(files, registered, passed), "rows": result.rows, "parts": result.parts}, handle,
                  indent=2, sort_keys=True)
    result.seconds = time.perf_counter() - began
    return result


def start_ray(settings, address: str | None = None) -> int:
    """Connect to the Ray cluster at `address` (the batch RayJob's, sized for the pool by
    generate: one worker pod per actor, a head CPU for reading), or start an embedded Ray
    sized for the pool plus a CPU for reading (a pool that takes every CPU can hang Ray
    Data); returns the actors that fit."""
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if address not in (None, "", "local"):
        if not ray.is_initialized():
            ray.init(address=address, log_to_driver=False)
        return settings.actors
    cpus = os.cpu_count() or 2
    if not ray.is_initialized():
        ray.init(address="local", num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    return max(1, min(settings.actors, int((cpus - 1) // settings.cpus_per_actor)))
