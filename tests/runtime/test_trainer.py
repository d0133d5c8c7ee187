"""Training on an embedded Ray: DDP over gloo with 2 workers, checkpoints, and resume
after the driver is killed mid-training."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.runtime.training_payload import training_payload

pytestmark = pytest.mark.slow

DRIVER = r"""
import os, sys, json, pickle
import ray
from framework.runtime.training.trainer import train_on_ray
payload = pickle.load(open(sys.argv[1], "rb"))
ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
try:
    result = train_on_ray(payload["recipe"], payload["pipeline"], payload["arrays"], payload["storage"], payload["run"])
    print(json.dumps({"started_at_epoch": result.started_at_epoch, "epochs": len(result.history),
                      "last_val_loss": result.history[-1]["val_loss"]}))
finally:
    ray.shutdown()
"""


def _payload(tmp_path: Path, epochs: int, rows: int = 2000) -> Path:
    # A patience longer than the run: the history must survive the resume, every epoch of it.
    overrides = [f"training.epochs={epochs}", "training.batch_size=64", "+training.early_stopping.patience=1000"]
    return training_payload(tmp_path, overrides, rows, "churn-test")


def _run(payload: Path, timeout: float = 300) -> dict:
    import json

    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", DRIVER, str(payload)], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=payload.parent)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _checkpoints(run_dir: Path) -> list[Path]:
    return sorted(p for p in run_dir.glob("checkpoint_*") if p.is_dir())


def _committed_checkpoints(run_dir: Path) -> int:
    """Checkpoints Ray Train has recorded in its snapshot: the ones a restore can use
    (a checkpoint directory on disk may not be recorded yet)."""
    import json

    try:
        return len(json.loads((run_dir / "checkpoint_manager_snapshot.json").read_text())["checkpoint_results"])
    except (OSError, ValueError, KeyError):
        return 0


def test_two_workers_train_and_checkpoint(tmp_path: Path) -> None:
    outcome = _run(_payload(tmp_path, epochs=3))
    assert outcome == {"started_at_epoch": 0, "epochs": 3, "last_val_loss": pytest.approx(outcome["last_val_loss"])}
    assert outcome["last_val_loss"] < 0.69  # better than chance on churn
    assert 1 <= len(_checkpoints(tmp_path / "ray-storage" / "churn-test")) <= 2  # keep: 2


def test_a_killed_run_resumes_from_its_last_checkpoint(tmp_path: Path) -> None:
    payload = _payload(tmp_path, epochs=40)
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(REPO)}
    driver = subprocess.Popen([sys.executable, "-c", DRIVER, str(payload)], env=env, cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    run_dir = tmp_path / "ray-storage" / "churn-test"
    deadline = time.time() + 240
    committed = 0
    while time.time() < deadline and committed < 1:
        time.sleep(0.5)
        committed = _committed_checkpoints(run_dir)
    os.killpg(driver.pid, signal.SIGKILL)  # the driver and the Ray processes it started
    driver.wait()
    # Counted before the kill: the kill may land while Ray Train rewrites its snapshot, which
    # it does in place (the next test covers that torn file), so it is not read again here.
    assert committed >= 1, "no checkpoint was recorded before the kill"
    outcome = _run(payload)
    assert outcome["started_at_epoch"] >= 1  # resumed from the last registered checkpoint, not restarted
    assert outcome["epochs"] == 40  # the history of the first run is kept


def test_a_snapshot_torn_by_a_kill_resumes_from_the_newest_checkpoint(tmp_path: Path) -> None:
    # Ray Train rewrites its snapshot in place: a kill during that write leaves it empty.
    _run(_payload(tmp_path, epochs=3))
    run_dir = tmp_path / "ray-storage" / "churn-test"
    (run_dir / "checkpoint_manager_snapshot.json").write_text("")
    outcome = _run(_payload(tmp_path, epochs=5))
    assert outcome["started_at_epoch"] == 3  # after the newest checkpoint (epoch index 2)
    assert outcome["epochs"] == 5
    assert (run_dir / "checkpoint_manager_snapshot.json.torn").read_text() == ""
