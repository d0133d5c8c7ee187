"""The Ray a local apply embeds: started in the background (its head processes outlive
the start), Ray Train on it without the cluster-only helpers, for one worker and for
DDP over gloo with two, and stopped in the background. Each case runs its own driver
process, like the trainer tests. Slow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.runtime.training_payload import training_payload

pytestmark = pytest.mark.slow

DRIVER = r"""
import json, os, pickle, sys, time
import ray
from ray._private.state import actors
from framework.runtime.training.embedded_ray import RaySession
from framework.runtime.training.trainer import train_on_ray

payload = pickle.load(open(sys.argv[1], "rb"))
session = RaySession(2, None, warm="ray.train.torch").start()
assert session.embedded
session.ready()
time.sleep(1)  # the head's processes must outlive the thread that started them
epochs = []
result = train_on_ray(payload["recipe"], payload["pipeline"], payload["arrays"], payload["storage"], payload["run"],
                      on_epoch=lambda metrics: epochs.append(int(metrics["epoch"])), embedded=True)
classes = sorted({a["ActorClassName"] for a in actors().values()})
session.stop()
session.close()
print(json.dumps({"epochs": epochs, "history": len(result.history), "val_loss": result.history[-1]["val_loss"],
                  "actors": classes, "initialized_after_close": ray.is_initialized(),
                  "watcher_setting_left": "RAY_TRAIN_ENABLE_PREEMPTION_WATCHER" in os.environ}))
"""

CLUSTER_ONLY = {"PlacementGroupCleaner", "DatasetManager", "_AutoscalingCoordinatorActor", "PreemptionWatcher"}


def _payload(tmp_path: Path, workers: int, epochs: int = 2, rows: int = 1500) -> Path:
    overrides = [f"training.epochs={epochs}", f"training.workers={workers}", "training.batch_size=64"]
    return training_payload(tmp_path, overrides, rows, "embedded-test")


@pytest.mark.parametrize("workers", [1, 2], ids=["one worker", "ddp two workers"])
def test_ray_train_on_the_embedded_ray_leaves_out_the_cluster_helpers(tmp_path: Path, workers: int) -> None:
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", DRIVER, str(_payload(tmp_path, workers))], capture_output=True,
                          text=True, timeout=300, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "SIGTERM handler is not set" not in done.stderr  # start() installed it; the warning is dropped
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome["epochs"] == [0, 1] and outcome["history"] == 2
    assert outcome["val_loss"] < 0.69  # better than chance on churn
    assert {"TrainController", "RayTrainWorker", "SynchronizationActor"} <= set(outcome["actors"])
    assert not CLUSTER_ONLY & set(outcome["actors"]), outcome["actors"]
    assert outcome["initialized_after_close"] is False
    assert outcome["watcher_setting_left"] is False  # set for the fit only: a later cluster fit keeps its watcher


def test_the_embedded_trainer_is_ray_trains_own_less_the_helpers() -> None:
    from ray.train.torch import TorchTrainer
    from ray.train.v2._internal.callbacks import DatasetsCallback
    from ray.train.v2._internal.callbacks.placement_group_callback import PlacementGroupCleanerCallback

    from framework.runtime.training.embedded_train import FixedWithoutAutoscaler
    from framework.runtime.training.trainer import trainer_for

    assert trainer_for(TorchTrainer, embedded=False) is TorchTrainer  # a cluster: Ray Train as it comes
    embedded = trainer_for(TorchTrainer, embedded=True)
    assert issubclass(embedded, TorchTrainer)
    import ray.train

    trainer = embedded(lambda config: None, scaling_config=ray.train.ScalingConfig(num_workers=1))
    callbacks = trainer._create_default_callbacks()
    assert not [c for c in callbacks if isinstance(c, (DatasetsCallback, PlacementGroupCleanerCallback))]
    assert len(callbacks) == len(TorchTrainer._create_default_callbacks(trainer)) - 2
    policy = FixedWithoutAutoscaler(trainer.scaling_config)
    policy.after_controller_start(None)  # no coordinator actor, no resource request
    assert policy._coordinator_client is None


def test_a_failed_start_is_raised_where_ray_is_awaited(monkeypatch) -> None:
    import ray

    from framework.runtime.training.embedded_ray import RaySession

    def refuse(*args, **kwargs):
        raise RuntimeError("no Ray today")

    if ray.is_initialized():
        pytest.skip("this process already runs a Ray")
    monkeypatch.setattr(ray, "init", refuse)
    monkeypatch.setattr("signal.signal", lambda *args: None)  # leave pytest's SIGTERM alone
    session = RaySession(2).start()
    with pytest.raises(RuntimeError, match="no Ray today"):
        session.ready()
    session.close()  # nothing to stop, and it returns
