"""`mlops batch --engine ray` (the default): score every pending input file in one Ray Data
pipeline on an embedded Ray (or the cluster at `--address`, the batch RayJob's), and hand the scored rows of each file to parts.py (which
writes the part, the manifest and resumes) in input order.

The pipeline's input is the list of read units, in file order: a parquet file's row
groups (packed to about UNIT_ROWS rows, from the footers) or a whole csv file. A pool of
actors (`batch.actors`, one ONNX Runtime session each) reads its unit with pyarrow,
`batch.batch_size` rows at a time, and scores them with the Predictor. Only the columns
the model and `data.extra_columns` use are read (a csv file's numeric features as
float64: pyarrow's streaming reader would type them from the first block alone).
Reading inside the actors keeps the raw rows out of Ray's object store and needs no
read tasks competing with the pool for CPUs (a pool holding every CPU next to Ray
Data's read tasks hangs). Ray Data keeps the output in input order (`preserve_order`);
every scored row carries its file's index, by which the ordered stream is cut back into
files, and a parquet file's part must hold exactly the rows its footer counts.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from framework.errors import MlopsError, Problem
from framework.runtime.batch.inputs import InputFile
from framework.runtime.batch.parts import cause_line

FILE_COLUMN = "__mlops_file"  # the index of a scored row's input file, dropped before writing
BLOCK_BYTES = 16 * 1024 * 1024  # Ray Data's output blocks (default 128 MiB): parts stream while later rows score
OBJECT_STORE_BYTES = 512 * 1024 * 1024  # scored blocks waiting for the driver (or for an earlier unit) at most
UNIT_ROWS = 131_072  # parquet row groups are packed into read units of about this many rows


def read_units(pending: list[InputFile]) -> tuple[list[dict[str, Any]], list[int | None]]:
    """(units in input order, each parquet file's row count; None for a csv file)."""
    import pyarrow.parquet as pq

    from framework.runtime.batch.inputs import _filesystem

    units, counts = [], []
    for index, source in enumerate(pending):
        if source.format != "parquet":
            units.append({"file": index, "path": source.path, "format": source.format, "first": 0, "count": 0})
            counts.append(None)
            continue
        fs, path = _filesystem(source.path)
        with fs.open(path, "rb") as handle:
            metadata = pq.ParquetFile(handle).metadata
        counts.append(metadata.num_rows)
        first, rows = 0, 0
        for group in range(metadata.num_row_groups):
            rows += metadata.row_group(group).num_rows
            if rows >= UNIT_ROWS or group == metadata.num_row_groups - 1:
                units.append({"file": index, "path": source.path, "format": "parquet", "first": first,
                              "count": group + 1 - first})
                first, rows = group + 1, 0
    return units, counts


class ReadAndScore:
    """A Ray Data actor: one Predictor; reads each unit it is given and scores it."""

    def __init__(self, model: bytes, pipeline: dict[str, Any], passed: list[str], columns: list[str],
                 batch_size: int):
        from framework.runtime.batch.predictor import Predictor

        self.predictor = Predictor(model, pipeline, passed)
        self.columns, self.batch_size = columns, batch_size
        pipeline = self.predictor.pipeline
        self.numeric = [name for name in pipeline.features if name not in pipeline.categorical]

    def __call__(self, units):
        import numpy as np
        import pyarrow as pa

        for unit in units.to_pylist():
            for batch in self._read(unit):
                if batch.num_rows:
                    table = self.predictor(batch)
                    yield table.append_column(FILE_COLUMN, pa.array(np.full(table.num_rows, unit["file"], np.int32)))

    def _read(self, unit: dict[str, Any]) -> Iterator[Any]:
        from framework.runtime.batch.inputs import _filesystem

        fs, path = _filesystem(unit["path"])
        with fs.open(path, "rb") as handle:
            if unit["format"] == "parquet":
                import pyarrow.parquet as pq

                groups = range(unit["first"], unit["first"] + unit["count"])
                yield from pq.ParquetFile(handle).iter_batches(batch_size=self.batch_size, row_groups=groups,
                                                                columns=self.columns)
            else:
                import pyarrow as pa
                from pyarrow import csv

                numbers = {name: pa.float64() for name in self.numeric}  # not int64 from the first block alone
                reader = csv.open_csv(handle, convert_options=csv.ConvertOptions(include_columns=self.columns,
                                                                                 column_types=numbers))
                for batch in reader:
                    for start in range(0, batch.num_rows, self.batch_size):
                        yield batch.slice(start, self.batch_size)


class RayEngine:
    name = "ray"

    def __init__(self, registered, passed: list[str], settings, address: str | None = None):
        self.registered, self.passed, self.settings, self.address = registered, list(passed), settings, address
        self.actors = settings.actors
        self.pending: list[InputFile] = []
        self.counts: list[int | None] = []
        self.stream: Iterator[Any] | None = None
        self.carry = None  # the start of a later file's rows
        self.position = 0

    def start(self) -> None:
        from ray.data import DataContext

        self.actors = start_ray(self.settings, self.address)
        context = DataContext.get_current()
        context.execution_options.preserve_order = True  # output rows in input order
        context.enable_progress_bars = False  # one line per part instead (on_part)
        context.target_max_block_size = BLOCK_BYTES
        logging.getLogger("ray.data").setLevel(logging.CRITICAL)  # its errors come back as exceptions: one line each

    def plan(self, pending: list[InputFile]) -> None:
        self.pending, self.position, self.stream, self.carry = list(pending), 0, None, None

    def _scored(self) -> Iterator[Any]:
        import ray
        from ray.data import ActorPoolStrategy

        units, self.counts = read_units(self.pending)
        if not units:
            return iter(())
        columns = list(dict.fromkeys([*self.registered.pipeline.features, *self.passed]))  # only what is used
        scored = ray.data.from_items(units, override_num_blocks=len(units)).map_batches(
            ReadAndScore,
            # The model's bytes, not its path: the actors may run on other nodes than this
            # driver, which downloaded it (the batch RayJob's workers, `--address`).
            fn_constructor_kwargs={"model": Path(self.registered.model_path).read_bytes(),
                                   "pipeline": self.registered.pipeline.to_dict(), "passed": self.passed,
                                   "columns": columns, "batch_size": self.settings.batch_size},
            batch_size=None,  # one unit (one block) per call
            batch_format="pyarrow",
            compute=ActorPoolStrategy(size=self.actors),
            num_cpus=self.settings.cpus_per_actor,
        )
        return iter(scored.iter_batches(batch_format="pyarrow", batch_size=None))

    def tables(self, source: InputFile) -> Iterator[Any]:
        """The scored rows of one input file, as pyarrow tables in input order."""
        import numpy as np

        if self.position >= len(self.pending) or self.pending[self.position] is not source:
            raise RuntimeError(f"{source.path} asked for out of order")
        if self.stream is None:
            self.stream = self._scored()
        index, rows = self.position, 0
        self.position += 1
        while True:
            table, self.carry = (self.carry, None) if self.carry is not None else (self._next(source), None)
            if table is None:
                break
            files = table.column(FILE_COLUMN).to_numpy()
            if files[0] < index:
                raise MlopsError([Problem(None, "--input", "Ray Data returned rows out of order")])
            mine = int(np.searchsorted(files, index, side="right"))
            if mine < table.num_rows:
                self.carry = table.slice(mine)
            if mine:
                rows += mine
                yield table.slice(0, mine).drop_columns([FILE_COLUMN])
            if self.carry is not None:
                break
        if self.counts[index] is not None and rows != self.counts[index]:
            raise MlopsError([Problem(None, "--input", f"{source.path}: {rows} row(s) scored, its footer says "
                                                       f"{self.counts[index]}")])

    def _next(self, source: InputFile):
        try:
            return next(self.stream, None)
        except MlopsError as error:  # raised in an actor (e.g. text in a numeric column): its own line
            raise MlopsError(error.problems) from None
        except Exception as error:
            raise MlopsError([Problem(None, "--input", f"ray failed scoring {source.path} or a file after it: "
                                                       f"{cause_line(error)}")]) from None

    def stop(self) -> None:
        import ray

        ray.shutdown()


def start_ray(settings, address: str | None = None) -> int:
    """Connect to the Ray cluster at `address` (the batch RayJob's, sized for the pool by
    generate: one worker pod per actor, a head CPU for the driver), or start an embedded
    Ray on this machine's CPUs; returns the actors that fit."""
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if address not in (None, "", "local"):
        if not ray.is_initialized():
            ray.init(address=address, log_to_driver=False)
        return settings.actors
    cpus = os.cpu_count() or 2
    if not ray.is_initialized():
        ray.init(address="local", num_cpus=cpus, object_store_memory=OBJECT_STORE_BYTES, include_dashboard=False,
                 log_to_driver=False)
    return max(1, min(settings.actors, int(cpus // settings.cpus_per_actor)))
