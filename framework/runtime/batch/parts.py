"""The output of `mlops batch`, whichever engine scores: one parquet part per input file,
resumable, with a manifest.

`<output>/part-<n>.parquet` is written under a hidden name and moved into place when its
input file is done, so a re-run after a crash skips the parts that exist; `_run.json`
(written first) says which model and inputs the parts belong to, and `_manifest.json`
(written last) lists every part with its row count. Each part carries the model's name
and version in its parquet metadata.

An engine supplies only `tables(source)`: the scored rows of one input file as an
iterator of pyarrow tables, in input order, every row once (ray_engine.py,
spark_engine.py); `plan(pending)` tells it beforehand which files it will be asked for.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

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
    engine: str = "ray"


def output_fs(uri: str):
    import fsspec

    if "://" in uri and not uri.startswith("file://"):
        fs, path = fsspec.core.url_to_fs(uri)
        return fs, path
    return fsspec.filesystem("file"), str(Path(uri.removeprefix("file://")).resolve())


def read_result(uri: str) -> BatchResult:
    """The finished run at `uri`, from its manifest (a run on a cluster, read back)."""
    fs, folder = output_fs(uri)
    with fs.open(f"{folder}/{MANIFEST_FILE}", "r") as handle:
        manifest = json.load(handle)
    return BatchResult(uri, manifest["model"], str(manifest["version"]), manifest["rows"], manifest["parts"])


def run_record(files: list[InputFile], registered, passed: list[str]) -> dict[str, Any]:
    """What a run's parts belong to: a re-run resumes only the same model on the same inputs
    (with either engine: both write the same parts)."""
    return {"model": registered.name, "version": registered.version, "inputs": [f.path for f in files],
            "passed": list(passed)}


def prepare_output(uri: str, run: dict[str, Any], overwrite: bool):
    """(filesystem, folder) ready for this run: new, resumed (same model and inputs, not
    finished) or, with overwrite, emptied; anything else is refused in one line."""
    fs, folder = output_fs(uri)
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


def cause_line(error: BaseException) -> str:
    """The cause of an engine's failure in one line: the worker's exception if the text
    holds one (e.g. text in a numeric column deep in a file), else its first line."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(error)).strip()
    found = re.findall(r"^(?:[\w.]+\.)?(?:MlopsError|\w*Error|\w*Exception|\w*Invalid): (.+)$", text,
                       flags=re.MULTILINE)
    line = found[-1] if found else (text.splitlines() or [type(error).__name__])[0]
    return line.strip()[:500]


def part_name(index: int) -> str:
    return f"part-{index:05d}.parquet"


class Engine(Protocol):
    """What parts.py needs of an engine (ray_engine.RayEngine, spark_engine.SparkEngine)."""

    name: str

    def plan(self, pending: list[InputFile]) -> None:
        """The files tables() will be asked for, in this order (a re-run: the unfinished ones)."""

    def tables(self, source: InputFile) -> Iterable[Any]:
        """The scored rows of one input file: pyarrow tables, in input order, every row once."""


def write_parts(files: list[InputFile], registered, passed: list[str], fs, folder: str, engine: Engine, *,
                output: str, on_part: Callable[[int, int, int], None] | None = None) -> BatchResult:
    """Every input file's part (those a previous run finished are kept), then the manifest.

    The engine's tables(source) are written as they come (never the whole file in
    memory) under a hidden name, and the part is moved into place when the file is done."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    began = time.perf_counter()
    metadata = {b"mlops.model": registered.name.encode(), b"mlops.version": registered.version.encode()}
    result = BatchResult(output, registered.name, registered.version, engine=engine.name)
    engine.plan([source for index, source in enumerate(files) if not fs.exists(f"{folder}/{part_name(index)}")])
    for index, source in enumerate(files):
        name = part_name(index)
        final = f"{folder}/{name}"
        if fs.exists(final):  # finished by a run that crashed later
            with fs.open(final, "rb") as handle:
                rows = pq.ParquetFile(handle).metadata.num_rows
            result.parts.append({"part": name, "input": source.path, "rows": rows})
            result.rows += rows
            result.skipped += 1
            continue
        hidden = f"{folder}/.{name}.tmp"
        rows, writer, schema = 0, None, None
        with fs.open(hidden, "wb") as handle:
            for table in engine.tables(source):
                if not isinstance(table, pa.Table):
                    table = pa.Table.from_pandas(table, preserve_index=False)
                if writer is None:
                    schema = table.schema.with_metadata(metadata)
                    writer = pq.ParquetWriter(handle, schema)
                elif not table.schema.equals(schema, check_metadata=False):
                    table = table.cast(schema.remove_metadata())  # e.g. a batch whose id column is all nulls
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
