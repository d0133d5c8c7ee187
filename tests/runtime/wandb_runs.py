"""An offline W&B run read back with wandb's own reader, and compared with its MLflow run.

The reader is wandb-core's (`wandb leet inspect --json`: one JSON object per record of the
run's `.wandb` transaction log, the file `wandb sync` uploads); wandb 0.31 has no Python
reader of that log. An MLflow run and its W&B mirror must agree on the params, and on every
metric value at every step.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STEP = "step"  # framework.runtime.wandb_mirror.STEP, the MLflow step of a row


@dataclass
class WandbRun:
    folder: Path
    run: dict[str, Any] = field(default_factory=dict)  # the run record: id, project, name, group, tags
    config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    exit_code: int | None = None

    def metrics(self, tables: tuple[str, ...] = ()) -> dict[str, list[tuple[int, float]]]:
        """{key: [(MLflow step, value)]} of every logged number (tables and W&B's own _keys left out)."""
        out: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for row in self.history:
            for key, value in row.items():
                if key == STEP or key.startswith("_") or key.startswith(tuple(f"{t}." for t in tables)):
                    continue
                out[key].append((int(row[STEP]), float(value)))
        return {key: sorted(values) for key, values in out.items()}

    def table(self, name: str) -> tuple[int, dict[str, Any]]:
        """(step, the table file's JSON: columns and data) of the table logged as `name`."""
        (row,) = [r for r in self.history if r.get(f"{name}._type") == "table-file"]
        return int(row[STEP]), json.loads((self.folder / "files" / row[f"{name}.path"]).read_text())


def read_offline_run(folder: Path) -> WandbRun:
    done = subprocess.run(
        [sys.executable, "-m", "wandb", "leet", "inspect", "--json", str(folder)],
        capture_output=True, text=True, timeout=120, check=False, env={**os.environ, "WANDB_MODE": "offline"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    run = WandbRun(Path(folder))
    for record in (json.loads(line) for line in done.stdout.splitlines() if line.strip()):
        kind = record["type"]
        if kind == "run":
            run.run = record["run"]
            run.config.update(record["run"].get("config", {}).get("update", {}))
        elif kind == "config":
            run.config.update(record["config"].get("update", {}))
        elif kind == "history":
            run.history.append(record["history"]["item"])
        elif kind == "artifact":
            run.artifacts.append(record["artifact"])
        elif kind == "exit":
            run.exit_code = int(record["exit"].get("exit_code", 0))
    run.config.pop("_wandb", None)
    return run


def mlflow_metrics(client, run_id: str) -> dict[str, list[tuple[int, float]]]:
    """{key: [(step, value)]} of every metric of an MLflow run, its whole history."""
    keys = client.get_run(run_id).data.metrics
    return {key: sorted((m.step, m.value) for m in client.get_metric_history(run_id, key)) for key in keys}
