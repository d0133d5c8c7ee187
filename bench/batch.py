"""Batch scoring throughput on N churn-shaped rows, every contender measured in one run:
  (a) plain loop (the floor): the single-process loop a user would write, pyarrow
      `iter_batches` (65,536 rows, the columns the model and the ids use) ->
      `FeaturePipeline.raw_inputs` -> ONNX Runtime (its default session options) -> a
      parquet part per input file with the ids and the model's answers;
  (b) `mlops batch churn` on its default engine, the embedded Ray Data;
  (c) `mlops batch churn --engine spark --master local[2]`.

Data: --rows rows (default 10,000,000) in --files parquet files (default 10; row groups
of 131,072 rows), each column sampled independently with numpy from data/churn.csv's
(customer_id unique, total_charges ~1% null), in a temporary folder. The model: churn
version 1, registered by `mlops apply churn` in a temporary copy of the project (or the
project given with --project, already applied).

Each contender runs as its own subprocess in its own session, one after the other. Per
contender: wall seconds of the whole command (start-up included), rows/s over it, the
start-up (seconds until the first finished part file is in the output folder: the
engine's start, the first file's read and score), the peak memory of the whole session
(the command and every process it started: Ray's GCS, raylet and workers, Spark's JVM
and Python workers), sampled every 0.25 s as the sum of the processes' PSS (shared
pages split between the processes that map them, so Ray's object store is counted once)
and, for reference, the largest sum of RSS; and the ratio of rows/s to (a), measured in
the same run. Every contender's output is checked: the row count and the first part's
answers equal (a)'s within 1e-6.

Goal (the issue): (b) >= 1.0x (a)'s rows/s, start-up included, peak memory <= 2 GB.
Run: `python bench/batch.py [--rows 10000000] [--files 10] [--contenders plain,ray,spark]
[--project DIR]`.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.processes import session_members  # noqa: E402

ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0", "MLFLOW_DISABLE_TELEMETRY": "true",
       "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false", "PYTHONPATH": str(ROOT)}
ROW_GROUP = 131_072
GOAL_RATIO, GOAL_MEMORY_GB = 1.0, 2.0

PLAIN = r'''
import json, os, sys
import numpy as np, onnxruntime as ort, pyarrow as pa, pyarrow.parquet as pq
from framework.runtime.training.features import FeaturePipeline

spec = json.loads(open(sys.argv[1]).read())
pipeline = FeaturePipeline.from_dict(spec["pipeline"])
session = ort.InferenceSession(spec["model"], providers=["CPUExecutionProvider"])
names = [o.name for o in session.get_outputs()]
for index, path in enumerate(spec["inputs"]):
    hidden, writer = os.path.join(spec["output"], f".part-{index:05d}.tmp"), None
    for batch in pq.ParquetFile(path).iter_batches(batch_size=65536, columns=spec["columns"]):
        answers = dict(zip(names, session.run(names, pipeline.raw_inputs(batch.to_pandas()))))
        columns = {name: batch.column(name) for name in spec["passed"]}
        for name, values in answers.items():
            values = values.reshape(batch.num_rows, -1)
            if values.dtype == object:
                columns[name] = values[:, 0].astype(str)
            else:
                for j in range(values.shape[1]):
                    columns[f"{name}_{j}" if values.shape[1] > 1 else name] = values[:, j]
        table = pa.table(columns)
        writer = writer or pq.ParquetWriter(hidden, table.schema)
        writer.write_table(table)
    writer.close()
    os.replace(hidden, os.path.join(spec["output"], f"part-{index:05d}.parquet"))
'''

CONTENDERS = {
    "plain": "(a) plain loop: pyarrow -> raw_inputs -> ORT",
    "ray": "(b) mlops batch (Ray Data)",
    "spark": "(c) mlops batch --engine spark local[2]",
}


# --- data and model ----------------------------------------------------------------------
def make_inputs(folder: Path, rows: int, files: int, seed: int = 0) -> list[Path]:
    """`files` parquet files of churn-shaped rows sampled from data/churn.csv's columns."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = pd.read_csv(ROOT / "data" / "churn.csv")
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    paths, start = [], 0
    for index in range(files):
        n = rows // files + (1 if index < rows % files else 0)
        ids = np.char.add("C", np.char.zfill(np.arange(start, start + n).astype(str), 10))
        columns = {"customer_id": pa.array(ids)}
        for name in source.columns:
            if name == "customer_id":
                continue
            values = source[name].dropna().to_numpy()
            column = values[rng.integers(0, len(values), n)]
            if name == "total_charges":
                column = np.where(rng.random(n) < 0.01, np.nan, column)
            columns[name] = pa.array(column, from_pandas=True)
        path = folder / f"rows-{index:03d}.parquet"
        pq.write_table(pa.table(columns), path, row_group_size=ROW_GROUP)
        paths.append(path)
        start += n
    return paths


def applied_project(folder: Path) -> Path:
    """A copy of the project's recipes and data where `mlops apply churn` registered version 1."""
    from rich.console import Console

    from framework import api

    root = folder / "project"
    root.mkdir()
    for name in ("recipes", "data"):
        shutil.copytree(ROOT / name, root / name)
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    (root / ".gitignore").write_text(".mlops/\n")
    os.environ.update({k: v for k, v in ENV.items() if k != "PYTHONPATH"})
    log = io.StringIO()
    began = time.perf_counter()
    try:
        api.apply("churn", project=root, console=Console(file=log, width=200, color_system=None))
    except Exception:
        print(log.getvalue()[-3000:], file=sys.stderr)
        raise
    print(f"  mlops apply churn: {time.perf_counter() - began:.0f} s", flush=True)
    return root


# --- measuring ---------------------------------------------------------------------------


def memory_kb(pid: int) -> tuple[int, int]:
    """(PSS, RSS) of one process in kB, (0, 0) once it is gone."""
    pss = rss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            for line in handle:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
                elif line.startswith("Rss:"):
                    rss = int(line.split()[1])
    except OSError:
        pass
    return pss, rss


def measure(command: list[str], cwd: Path, output: Path, log: Path) -> dict[str, float]:
    """Run `command` in its own session; wall seconds, seconds to the first part, peak PSS
    and RSS sums (GB) of the session. Whatever it leaves running is killed afterwards."""
    began = time.perf_counter()
    first = None
    peak_pss = peak_rss = 0
    with open(log, "wb") as handle:
        process = subprocess.Popen(command, cwd=cwd, env={**os.environ, **ENV}, start_new_session=True,
                                   stdin=subprocess.DEVNULL, stdout=handle, stderr=subprocess.STDOUT)
        while process.poll() is None:
            pss = rss = 0
            for pid in session_members(process.pid):
                p, r = memory_kb(pid)
                pss, rss = pss + p, rss + r
            peak_pss, peak_rss = max(peak_pss, pss), max(peak_rss, rss)
            if first is None and output.is_dir() and any(output.glob("part-*.parquet")):
                first = time.perf_counter() - began
            time.sleep(0.25)
    seconds = time.perf_counter() - began
    for pid in session_members(process.pid):  # never `ray stop`: only this session's processes
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {process.returncode}; log tail:\n  "
                           + "\n  ".join(log.read_text(errors="replace").splitlines()[-15:]))
    return {"seconds": seconds, "first_part_s": first if first is not None else seconds,
            "peak_pss_gb": peak_pss / 1024 ** 2, "peak_rss_gb": peak_rss / 1024 ** 2}


def read_parts(output: Path):
    import pyarrow.parquet as pq

    parts = sorted(output.glob("part-*.parquet"))
    return sum(pq.ParquetFile(p).metadata.num_rows for p in parts), pq.read_table(parts[0]).to_pandas()


# --- main --------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="rows to score")
    parser.add_argument("--files", type=int, default=10, help="parquet files the rows are split into")
    parser.add_argument("--contenders", default=",".join(CONTENDERS),
                        help=f"comma-separated, of {','.join(CONTENDERS)}")
    parser.add_argument("--project", type=Path,
                        help="an already applied project to reuse (default: apply churn in a copy)")
    args = parser.parse_args()
    chosen = [c.strip() for c in args.contenders.split(",") if c.strip()]
    if not chosen or any(c not in CONTENDERS for c in chosen):
        parser.error(f"contenders: comma-separated, of {','.join(CONTENDERS)}")

    from framework import api
    from framework.runtime.registered import open_version

    load = os.getloadavg()
    print(f"bench/batch.py: {args.rows:,} rows in {args.files} parquet files; {os.cpu_count()} CPUs, load average "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at start", flush=True)
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        tmp_path = Path(tmp)
        began = time.perf_counter()
        inputs = make_inputs(tmp_path / "inputs", args.rows, args.files)
        size = sum(p.stat().st_size for p in inputs) / 1024 ** 2
        print(f"  data: {time.perf_counter() - began:.0f} s, {size:.0f} MB of parquet", flush=True)
        project = args.project.resolve() if args.project else applied_project(tmp_path)
        recipe = api.load_recipe("churn", project=project).recipe
        registered = open_version(recipe, project / ".mlops", "1")
        spec = tmp_path / "plain.json"
        spec.write_text(json.dumps({"model": str(registered.model_path), "pipeline": registered.pipeline.to_dict(),
                                    "passed": list(recipe.data.extra_columns), "inputs": [str(p) for p in inputs],
                                    "columns": list(dict.fromkeys([*registered.pipeline.features,
                                                                   *recipe.data.extra_columns])),
                                    "output": str(tmp_path / "out-plain")}))
        cli = [sys.executable, "-m", "framework.cli", "batch", "churn", "--input", str(tmp_path / "inputs")]
        commands = {
            "plain": [sys.executable, "-c", PLAIN, str(spec)],
            "ray": [*cli, "--output", str(tmp_path / "out-ray")],
            "spark": [*cli, "--output", str(tmp_path / "out-spark"), "--engine", "spark", "--master", "local[2]"],
        }
        reference = None
        for key in CONTENDERS:
            if key not in chosen:
                continue
            output = tmp_path / f"out-{key}"
            if key == "plain":
                output.mkdir()
            try:
                results[key] = measure(commands[key], project, output, tmp_path / f"{key}.log")
            except RuntimeError as error:
                print(f"  {CONTENDERS[key]}: {error}", flush=True)
                continue
            rows, first = read_parts(output)
            if rows != args.rows:
                print(f"  {CONTENDERS[key]}: WRONG: {rows} rows out of {args.rows}", flush=True)
            if reference is None:
                reference = first
            else:
                same = (first["customer_id"].tolist() == reference["customer_id"].tolist()
                        and np.abs(first["probabilities_1"].to_numpy(np.float64)
                                   - reference["probabilities_1"].to_numpy(np.float64)).max() <= 1e-6)
                if not same:
                    print(f"  {CONTENDERS[key]}: WRONG: its first part differs from the first contender's", flush=True)
            r = results[key]
            print(f"  {CONTENDERS[key]}: {r['seconds']:.1f} s, first part {r['first_part_s']:.1f} s, "
                  f"peak PSS {r['peak_pss_gb']:.2f} GB (RSS {r['peak_rss_gb']:.2f} GB), {rows:,} rows", flush=True)
            shutil.rmtree(output, ignore_errors=True)

    load = os.getloadavg()
    base = results.get("plain")
    print(f"\nresults (load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the end); rows/s over the whole "
          "command, start-up included; x plain: rows/s relative to (a), same run")
    print(f"{'contender':42} {'rows/s':>10} {'x plain':>8} {'seconds':>8} {'start-up s':>10} {'peak PSS GB':>11} "
          f"{'peak RSS GB':>11}")
    for key, r in results.items():
        rate = args.rows / r["seconds"]
        ratio = f"{rate / (args.rows / base['seconds']):.2f}" if base else "-"
        print(f"{CONTENDERS[key]:42} {rate:10,.0f} {ratio:>8} {r['seconds']:8.1f} {r['first_part_s']:10.1f} "
              f"{r['peak_pss_gb']:11.2f} {r['peak_rss_gb']:11.2f}")
    if base and "ray" in results:
        ratio = base["seconds"] / results["ray"]["seconds"]
        memory = results["ray"]["peak_pss_gb"]
        print("\ngoals")
        print(f"  [{'MET' if ratio >= GOAL_RATIO else 'NOT MET'}] Ray Data >= {GOAL_RATIO:.1f}x the plain loop's rows/s: "
              f"{ratio:.2f}x")
        print(f"  [{'MET' if memory <= GOAL_MEMORY_GB else 'NOT MET'}] Ray Data peak memory <= {GOAL_MEMORY_GB:.0f} GB: "
              f"{memory:.2f} GB (PSS)")


if __name__ == "__main__":
    main()
