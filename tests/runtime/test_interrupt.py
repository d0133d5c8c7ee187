"""Ctrl-C during `mlops apply`: exit 130 with a message, no Ray process left, the MLflow
run marked KILLED, and the next apply resumes from the last checkpoint. Slow."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _processes_with(marker: str) -> list[str]:
    """Every live process whose environment carries marker (Ray's daemons and workers
    inherit the driver's environment)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if marker.encode() in Path(f"/proc/{pid}/environ").read_bytes():
                found.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:120])
        except OSError:
            pass
    return found


def _recorded_checkpoints(root: Path) -> int:
    """Checkpoints Ray Train has recorded in its snapshot: the ones a restore can use."""
    import json

    for snapshot in (root / ".mlops" / "ray").glob("churn-dev-*/checkpoint_manager_snapshot.json"):
        try:
            return len(json.loads(snapshot.read_text())["checkpoint_results"])
        except (OSError, ValueError, KeyError):
            return 0
    return 0


def _apply(root: Path, marker: str) -> subprocess.Popen:
    env = {**os.environ, "MLOPS_TEST_MARKER": marker}
    return subprocess.Popen(
        [sys.executable, "-m", "framework.cli", "apply", "churn"], cwd=root, env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,  # its own group, as a shell job
    )


def test_ctrl_c_stops_cleanly_and_the_next_apply_resumes(churn_project: Path) -> None:
    import mlflow

    recipe = churn_project / "recipes" / "churn.yaml"
    # 200 epochs overfit the small data: the quality gates are not what this test is about.
    recipe.write_text(recipe.read_text() + "training:\n  epochs: 200\n"
                      "evaluation:\n  gates:\n    min_accuracy: 0.5\n    min_roc_auc: 0.5\n"
                      "    fairness:\n      max_disparity: 1.0\n")
    marker = uuid.uuid4().hex
    apply = _apply(churn_project, marker)
    seen = []
    for line in apply.stdout:
        seen.append(line)
        if line.startswith("epoch 3/200"):
            break
    else:
        pytest.fail("apply ended before epoch 3: " + "".join(seen)[-3000:])
    deadline = time.monotonic() + 60  # a checkpoint on disk may not be recorded by Ray Train yet
    while not _recorded_checkpoints(churn_project) and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(apply.pid, signal.SIGINT)  # what Ctrl-C in a terminal sends: the whole group
    rest, _ = apply.communicate(timeout=120)
    assert apply.returncode == 130, rest[-3000:]
    assert rest.strip().endswith("interrupted: apply stopped and left nothing running; "
                                 "run the same command again to resume from the last checkpoint")
    assert "Traceback" not in rest
    deadline = time.monotonic() + 15
    while _processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _processes_with(marker) == []

    client = mlflow.MlflowClient(f"sqlite:///{churn_project / '.mlops' / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("churn").experiment_id])
    assert run.info.status == "KILLED"

    again = _apply(churn_project, marker)
    output, _ = again.communicate(timeout=600)
    assert again.returncode == 0, output[-3000:]
    assert "resumed from the checkpoint of epoch" in output
    assert "epoch 1/200" not in output
