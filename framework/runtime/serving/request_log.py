"""Sampled request/prediction logging: the served traffic drift monitoring reads.

A sampled request (each with probability `sample_rate`, `monitoring.metrics.
log_sample_rate` of the recipe, default 10%) appends its arrays to an in-memory buffer,
which costs the request a random draw and a list append. A background thread writes the
buffer every `flush_seconds` (10 s; or sooner when it holds `flush_rows` rows) as one parquet
file per model under `<state_dir>/requests/<model>/`; a full buffer (`max_rows`) drops
new samples rather than grow. Files are written under a hidden name and renamed, so a
reader never sees half a file: `pandas.read_parquet(<state_dir>/requests/<model>)`
reads the folder.

One row per example (a request of 8 rows logs 8 rows), columns:
  timestamp (UTC, microseconds; when the request arrived), model, version, latency_ms,
  one column per input column named by the model signature (`tenure_months`, a
  float; `contract`, text), and the outputs: one column per output column,
  `<output>_<j>` (`probabilities_0`, `probabilities_1`), or `<output>` when it has one.
"""

from __future__ import annotations

import logging
import os
import random
import threading
from collections import deque
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

log = logging.getLogger("mlops.serve")

DEFAULT_SAMPLE_RATE = 0.1


class RequestLog:
    def __init__(
        self,
        folder: Path,
        sample_rate: float = DEFAULT_SAMPLE_RATE,
        *,
        flush_seconds: float = 10.0,
        flush_rows: int = 10_000,
        max_rows: int = 200_000,
    ):
        if not 0.0 <= sample_rate <= 1.0:
            raise ValueError(f"sample_rate must be in [0, 1], got {sample_rate}")
        self.folder = Path(folder)
        self.sample_rate = sample_rate
        self.flush_seconds = flush_seconds
        self.flush_rows = flush_rows
        self.max_rows = max_rows
        self.dropped = 0
        self.written_files = 0
        self._buffer: deque[tuple] = deque()  # append and popleft are atomic: no lock on the hot path
        self._rows = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._columns: dict[str, tuple[tuple[str, ...], list[tuple[str, int]]]] = {}
        self._seq = 0
        self._warned: set[str] = set()
        self._random = random.random

    # --- hot path (event loop thread) ----------------------------------------------------
    def sample(self) -> bool:
        rate = self.sample_rate
        return rate >= 1.0 or (rate > 0.0 and self._random() < rate)

    def add(self, model: str, version: str, arrived: float, latency_s: float, inputs: dict, outputs: dict) -> None:
        """One sampled request: its input and output arrays ({name: array}, examples first)."""
        first = next(iter(inputs.values()))
        rows = first.shape[0] if first.ndim > 1 else 1
        if self._rows + rows > self.max_rows:
            self.dropped += 1
            return
        self._buffer.append((model, version, arrived, latency_s, inputs, outputs, rows))
        self._rows += rows  # approximate across threads; only bounds memory and wakes the writer
        if self._rows >= self.flush_rows:
            self._wake.set()

    # --- set-up -----------------------------------------------------------------------
    def describe(self, model: str, columns: tuple[str, ...], outputs: list[tuple[str, int]]) -> None:
        """Column names of a model: its input columns, and (output name, width) pairs."""
        self._columns[model] = (tuple(columns), list(outputs))

    def start(self) -> None:
        """Start the writer thread; import what writing needs now, at start-up: pyarrow
        imports pandas on its first conversion (~0.7 s), which must not stall requests."""
        if self._thread is None and self.sample_rate > 0:
            import pyarrow as pa
            import pyarrow.parquet  # noqa: F401

            pa.array(np.zeros(1))
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="request-log", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Stop the thread after writing what is buffered."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            self._wake.set()
            thread.join(timeout=30)
        self.flush()

    # --- background ---------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            self.flush()

    def flush(self) -> None:
        buffer = self._buffer
        records = []
        while buffer:
            records.append(buffer.popleft())
        self._rows = max(0, self._rows - sum(r[6] for r in records))
        if not records:
            return
        by_model: dict[str, list[tuple]] = {}
        for record in records:
            by_model.setdefault(record[0], []).append(record)
        for model, group in by_model.items():
            try:
                self._write(model, group)
            except Exception as exc:  # never let logging take the server down
                if model not in self._warned:
                    self._warned.add(model)
                    log.warning("request log for %s not written to %s: %s", model, self.folder / model, exc)

    def _write(self, model: str, records: list[tuple]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        columns, outputs = self._columns.get(model, ((), []))
        rows = np.fromiter((r[6] for r in records), dtype=np.int64, count=len(records))
        total = int(rows.sum())
        stamps = np.fromiter((r[2] for r in records), dtype=np.float64, count=len(records))
        latency = np.fromiter((r[3] for r in records), dtype=np.float64, count=len(records))
        versions = [r[1] for r in records]
        if len(set(versions)) == 1:
            version_column = pa.array([versions[0]] * total, pa.string())
        else:
            version_column = pa.array(np.repeat(np.array(versions, dtype=object), rows), pa.string())
        arrays: dict[str, pa.Array] = {
            "timestamp": pa.array(np.repeat((stamps * 1e6).astype("datetime64[us]"), rows), pa.timestamp("us", tz="UTC")),
            "model": pa.array([model] * total, pa.string()),
            "version": version_column,
            "latency_ms": pa.array(np.repeat(latency * 1e3, rows), pa.float64()),
        }
        parts = [np.concatenate([r[4][n] for r in records]).reshape(total, -1) for n in records[0][4]]
        width = sum(part.shape[1] for part in parts)
        names = iter(columns if len(columns) == width else tuple(f"input_{j}" for j in range(width)))
        for part in parts:  # per input, so a text column stays text next to numeric ones
            for j in range(part.shape[1]):
                arrays[next(names)] = pa.array(part[:, j])
        for name, _width in outputs or [(n, -1) for n in records[0][5]]:
            values = np.concatenate([r[5][name] for r in records]).reshape(total, -1)
            if values.shape[1] == 1:
                arrays[name] = pa.array(values[:, 0])
            else:
                for j in range(values.shape[1]):
                    arrays[f"{name}_{j}"] = pa.array(values[:, j])
        folder = self.folder / model
        folder.mkdir(parents=True, exist_ok=True)
        self._seq += 1
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
        final = folder / f"{stamp}-{os.getpid()}-{self._seq:06d}.parquet"
        hidden = folder / f".{final.name}.tmp"
        pq.write_table(pa.table(arrays), hidden)
        os.replace(hidden, final)
        self.written_files += 1


def output_widths(config) -> list[tuple[str, int]]:
    return [(t.name, int(np.prod([max(d, 1) for d in t.dims]))) for t in config.output]


__all__ = ["RequestLog", "DEFAULT_SAMPLE_RATE", "output_widths"]

