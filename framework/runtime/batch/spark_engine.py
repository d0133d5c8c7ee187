"""`mlops batch --engine spark [--master URL]`: the same scoring and the same parts on
Apache Spark (an optional extra: `pip install 'mlops-recipes[spark]'`).

Each input file is read by Spark (`spark.read.parquet`/`csv`), its partitions scored in
Spark's Python workers by `mapInArrow` with the very Predictor Ray Data's actors run (built
once per partition), and every scored batch travels back as one Arrow IPC blob. The
scored blobs of a file are persisted on the executors' disks (`DISK_ONLY`) by one job
that runs every partition in parallel, then streamed to the driver partition by
partition in order (`toLocalIterator(prefetchPartitions=True)`): the driver holds at
most two partitions, never the file, and parts.py writes the part as the blobs come.
Rows come out in input order (Spark keeps a file's splits and the rows within them in
order), every row once.

pyspark is imported only here. Its JVM's console output (log4j, the JVM's own warnings)
goes to a log file named in any error; the progress bar and the UI are off. Local paths
are read as file:// URLs; s3:// and gs:// are passed to Spark as-is (they need the
cluster's Hadoop connectors: s3a:// and the GCS connector).
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from framework.errors import MlopsError, Problem
from framework.runtime.batch.inputs import InputFile
from framework.runtime.batch.parts import cause_line

INSTALL = "pip install 'mlops-recipes[spark]'"
DEFAULT_MASTER = "local[*]"
MAX_LOCAL_CORES = 8  # local[*]: one Python worker (and ONNX Runtime session) per core, at most this many
_log: dict[str, Any] = {"path": None, "failed": False}  # the JVM's output, one file per process


def check_installed() -> None:
    """One line, before any work, when the extra is missing."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        message = f"spark needs pyspark, which is not installed: {INSTALL}"
        raise MlopsError([Problem(None, "--engine", message)]) from None


def resolve_master(master: str | None) -> str:
    """`local[*]` (the default) is capped at MAX_LOCAL_CORES cores; anything else is Spark's."""
    master = (master or DEFAULT_MASTER).strip()
    if master == DEFAULT_MASTER:
        return f"local[{max(1, min(os.cpu_count() or 1, MAX_LOCAL_CORES))}]"
    return master


def _score_partition(batches, model_path: str, pipeline: dict[str, Any], passed: list[str]):
    """mapInArrow's function, run in Spark's Python workers: one Predictor per partition,
    each scored batch out as one row holding its Arrow IPC stream."""
    import pyarrow as pa

    from framework.runtime.batch.predictor import Predictor

    predictor = None
    for batch in batches:
        if batch.num_rows == 0:
            continue
        if predictor is None:
            predictor = Predictor(model_path, pipeline, passed)
        table = predictor(batch)  # a pyarrow batch in, a pyarrow table out
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        blob = sink.getvalue()  # one binary value, no copy
        offsets = pa.array([0, blob.size], pa.int32()).buffers()[1]
        yield pa.RecordBatch.from_arrays([pa.BinaryArray.from_buffers(pa.binary(), 1, [None, offsets, blob])],
                                         names=["scored"])


class SparkEngine:
    name = "spark"

    def __init__(self, registered, passed: list[str], settings, master: str | None = None):
        self.registered, self.passed, self.settings = registered, list(passed), settings
        self.master = resolve_master(master)
        self.spark = None
        self._owned = False

    def start(self) -> None:
        from pyspark import SparkConf, SparkContext
        from pyspark.sql import SparkSession

        logging.getLogger("py4j").setLevel(logging.WARNING)
        framework_root = str(Path(__file__).resolve().parents[3])  # the workers import framework from here
        python_path = os.pathsep.join(p for p in (framework_root, os.environ.get("PYTHONPATH", "")) if p)
        conf = (SparkConf().setMaster(self.master).setAppName("mlops-batch")
                .set("spark.ui.enabled", "false")
                .set("spark.ui.showConsoleProgress", "false")
                .set("spark.sql.execution.arrow.maxRecordsPerBatch", str(self.settings.batch_size))
                .set("spark.sql.warehouse.dir", str(Path(tempfile.gettempdir()) / "mlops-spark-warehouse"))
                .set("spark.executorEnv.PYTHONPATH", python_path))
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # the workers run this interpreter, not `python3`
        try:
            self._owned = SparkContext._active_spark_context is None
            if SparkContext._gateway is None:  # the first Spark of this process: its JVM's output to a file
                from pyspark.java_gateway import launch_gateway

                descriptor, path = tempfile.mkstemp(prefix="mlops-spark-", suffix=".log")
                _log["path"] = path
                atexit.register(_forget_log)
                with os.fdopen(descriptor, "wb") as handle:
                    gateway = launch_gateway(conf, popen_kwargs={"stdout": handle, "stderr": handle})
                SparkContext(conf=conf, gateway=gateway)
            self.spark = SparkSession.builder.config(conf=conf).getOrCreate()
            self.spark.sparkContext.setLogLevel("WARN" if _log["path"] else "ERROR")
        except Exception as error:  # no Java, a master that does not answer, ...
            raise self._failed(f"spark could not start on {self.master}", error) from None

    def _failed(self, what: str, error: BaseException) -> MlopsError:
        _log["failed"] = True
        where = f" (Spark's log: {_log['path']})" if _log["path"] else ""
        return MlopsError([Problem(None, "--engine", f"{what}: {cause_line(error)}{where}")])

    def plan(self, pending: list[InputFile]) -> None:
        """Nothing to prepare: each file is a Spark job of its own."""

    def _uri(self, source: InputFile) -> str:
        return source.path if "://" in source.path else Path(source.path).resolve().as_uri()

    def tables(self, source: InputFile) -> Iterator[Any]:
        """The scored rows of one input file, as pyarrow tables in input order."""
        import pyarrow as pa
        from pyspark import StorageLevel

        read = self.spark.read
        try:
            frame = (read.parquet(self._uri(source)) if source.format == "parquet"
                     else read.options(header=True, inferSchema=True).csv(self._uri(source)))
            columns = list(dict.fromkeys([*self.registered.pipeline.features, *self.passed]))  # only what is used
            frame = frame.select(*[frame["`" + name.replace("`", "``") + "`"] for name in columns])
            score = functools.partial(_score_partition, model_path=str(self.registered.model_path),
                                      pipeline=self.registered.pipeline.to_dict(), passed=self.passed)
            scored = frame.mapInArrow(score, "scored binary").persist(StorageLevel.DISK_ONLY)
        except Exception as error:
            raise self._failed(f"spark could not read {source.path}", error) from None
        try:
            try:
                scored.count()  # every partition scored in parallel, kept on disk
                rows = scored.toLocalIterator(prefetchPartitions=True)  # then one partition at a time, in order
            except Exception as error:
                raise self._failed(f"spark failed scoring {source.path}", error) from None
            while True:
                try:
                    row = next(rows, None)
                except Exception as error:
                    raise self._failed(f"spark failed scoring {source.path}", error) from None
                if row is None:
                    break
                yield pa.ipc.open_stream(row[0]).read_all()
        finally:
            scored.unpersist()

    def stop(self) -> None:
        if self.spark is not None and self._owned:
            self.spark.stop()
        self.spark = None


def _forget_log() -> None:
    """The JVM's log goes with the process unless a run failed (its error names the file)."""
    path = _log["path"]
    if path and not _log["failed"]:
        Path(path).unlink(missing_ok=True)
