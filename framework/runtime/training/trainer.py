"""Training on Ray Train: a TorchTrainer (DDP over gloo on CPU, nccl on GPU) with
checkpoints every `training.checkpoint.every_epochs`, keeping `keep`.

A run is named after the recipe hash: re-running the same recipe with the same
storage resumes from its latest checkpoint (Ray Train restores a run of the same name
and storage path), so an interrupted apply continues instead of starting over.

Rank 0 also sends every epoch's metrics to the driver through a Ray queue, so the
driver can draw a progress bar and log them to MLflow while training runs.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

STATE_FILE = "state.pt"
# Ray Train's controller polls its workers every RAY_TRAIN_HEALTH_CHECK_INTERVAL_S (2 s by
# default) and a worker's report waits while the previous one is unread (a queue of one):
# the end of training is seen up to two polls late (about 6 s of teardown) and epochs
# shorter than a poll are held back. Ray Train forwards the variable to its controller.
POLL_INTERVAL_S = "0.1"


@dataclass(frozen=True)
class TrainResult:
    state_dict: dict[str, Any]  # the trained model's weights
    history: list[dict[str, float]]  # one entry per epoch: epoch, train_loss, val_loss, val_<metric>
    started_at_epoch: int  # > 0 when the run resumed from a checkpoint
    checkpoint_dir: str | None


def train_on_ray(
    recipe_dict: dict[str, Any],
    pipeline_dict: dict[str, Any],
    arrays: dict[str, np.ndarray],
    storage: Path,
    run_name: str,
    *,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    embedded: bool = False,
) -> TrainResult:
    """Train the recipe's model on the arrays (x_train, y_train, x_val, y_val[, t_train]).

    Ray must be initialised by the caller (embedded locally, or a cluster address).
    on_epoch is called in the calling process with each epoch's metrics as they come.
    embedded: the caller started this Ray for this job (a local apply): Ray Train runs
    without its cluster-only helpers (embedded_train.py).
    """
    import ray.train
    from ray.train.torch import TorchConfig, TorchTrainer

    training = recipe_dict["training"]
    os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", POLL_INTERVAL_S)
    use_gpu = float(training["gpus_per_worker"]) > 0
    resume_from = _recover_torn_snapshot(storage.resolve() / run_name)
    progress = _ProgressRelay(on_epoch) if on_epoch else None
    trainer = trainer_for(TorchTrainer, embedded)(
        _train_loop,
        train_loop_config={"recipe": recipe_dict, "pipeline": pipeline_dict, "arrays": ray.put(arrays),
                           "progress": progress.queue if progress else None, "resume_from": resume_from},
        torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
        scaling_config=ray.train.ScalingConfig(
            num_workers=int(training["workers"]),
            use_gpu=use_gpu,
            resources_per_worker={"CPU": float(training["cpus_per_worker"]),
                                  **({"GPU": float(training["gpus_per_worker"])} if use_gpu else {})},
        ),
        run_config=ray.train.RunConfig(
            name=run_name,
            storage_path=str(storage.resolve()),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=int(training["checkpoint"]["keep"])),
            failure_config=ray.train.FailureConfig(max_failures=0),
        ),
    )
    try:
        result = _fit_interruptibly(trainer)
    finally:
        if progress:
            progress.close()
    checkpoint = result.checkpoint
    if checkpoint is None:
        raise RuntimeError("training finished without a checkpoint")
    import torch

    with checkpoint.as_directory() as folder:
        state = torch.load(os.path.join(folder, STATE_FILE), map_location="cpu", weights_only=False)
    return TrainResult(state["model"], state["history"], state["started_at_epoch"], checkpoint.path)


def trainer_for(base, embedded: bool):
    """Ray Train's trainer class `base`; for an embedded Ray, less its cluster-only helpers."""
    if not embedded:
        return base
    try:
        from framework.runtime.training.embedded_train import trainer_class
    except ImportError:  # a Ray whose internals moved: its trainer as it comes
        return base
    return trainer_class(base)


SNAPSHOT_FILE = "checkpoint_manager_snapshot.json"


def _recover_torn_snapshot(run_dir: Path) -> str | None:
    """Ray Train rewrites its run snapshot in place; a run killed during that write leaves it
    empty or cut short, and the next fit refuses to start ("Expecting value: line 1 column 1").
    Set the torn snapshot aside and resume from the newest checkpoint whose state loads."""
    import json

    snapshot = run_dir / SNAPSHOT_FILE
    if not snapshot.is_file():
        return None
    try:
        json.loads(snapshot.read_text())
        return None
    except (ValueError, UnicodeDecodeError):
        snapshot.replace(run_dir / (SNAPSHOT_FILE + ".torn"))
    import torch

    for folder in sorted(run_dir.glob("checkpoint_*"), reverse=True):  # names sort by time
        try:
            torch.load(folder / STATE_FILE, map_location="cpu", weights_only=False)
        except Exception:  # noqa: BLE001 - a checkpoint cut short by the same kill: try an older one
            continue
        return str(folder)
    return None


def _fit_interruptibly(trainer):
    """trainer.fit() in a helper thread, so Ctrl-C reaches the caller as KeyboardInterrupt.

    In the main thread Ray Train installs its own SIGINT handler, which aborts the run
    and then exits the process (and stays installed afterwards). From a helper thread it
    installs none: the caller's KeyboardInterrupt shuts Ray down, workers included.
    """
    outcome: dict[str, Any] = {}

    def fit() -> None:
        try:
            outcome["result"] = trainer.fit()
        except BaseException as error:  # noqa: BLE001 - re-raised in the caller's thread
            outcome["error"] = error

    thread = threading.Thread(target=fit, name="mlops-train-fit", daemon=True)
    thread.start()
    while thread.is_alive():
        thread.join(timeout=0.2)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


class _ProgressRelay:
    """A Ray queue the rank-0 worker puts epoch metrics in, drained by a driver thread."""

    def __init__(self, on_epoch: Callable[[dict[str, float]], None]):
        from ray.util.queue import Queue

        self.queue = Queue(actor_options={"num_cpus": 0})
        self._on_epoch = on_epoch
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drain, name="mlops-train-progress", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        from ray.util.queue import Empty

        while True:
            try:
                item = self.queue.get(block=True, timeout=0.2)
            except Empty:
                if self._stop.is_set():
                    return
                continue
            except Exception:  # the queue actor is gone (Ray shut down on Ctrl-C)
                return
            self._on_epoch(item)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        try:
            self.queue.shutdown()
        except Exception:  # already gone with Ray
            pass


def _train_loop(config: dict[str, Any]) -> None:
    """Runs on every Ray Train worker."""
    import ray
    import ray.train
    import ray.train.torch
    import torch

    from framework.recipe.recipe import Recipe
    from framework.runtime.training.epochs import EarlyStop, EpochRunner, logits_module

    recipe = Recipe.model_validate(config["recipe"])
    training = recipe.training
    arrays = config["arrays"]
    arrays = ray.get(arrays) if isinstance(arrays, ray.ObjectRef) else arrays
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    runner = EpochRunner(recipe, config["pipeline"], arrays, rank, world)
    early = EarlyStop(training.early_stopping)
    progress = config.get("progress")

    started_at, history = 0, []
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is None and config.get("resume_from"):
        checkpoint = ray.train.Checkpoint(config["resume_from"])
    if checkpoint is not None:  # resume: same weights, optimizer state and epoch
        with checkpoint.as_directory() as folder:
            state = torch.load(os.path.join(folder, STATE_FILE), map_location="cpu", weights_only=False)
        runner.restore(state)
        early.restore(state.get("early_stopping"))
        started_at, history = state["epoch"] + 1, state["history"]
    resumed_from = started_at
    # DDP syncs gradients in backward. Its buffers are the standardisation mean/std, constant
    # during training: broadcasting them before every forward (DDP's default) is a second
    # collective per step, 0.7-0.9 ms of a 3.6-4.0 ms step on 2 CPU workers.
    module = ray.train.torch.prepare_model(logits_module(runner.model),
                                           parallel_strategy_kwargs={"forward_sync_buffers": False})

    for epoch in range(started_at, training.epochs):
        train_loss = runner.train_epoch(epoch, module)
        metrics = {"epoch": epoch, "train_loss": train_loss, **runner.validate()}
        metrics["lr"] = runner.schedule(metrics["val_loss"])
        stop = early.observe(epoch, metrics["val_loss"], runner.model)
        metrics["best_epoch"] = early.best_epoch
        history.append(metrics)
        if rank == 0 and progress is not None:
            progress.put(metrics)
        last = stop or epoch == training.epochs - 1
        if rank == 0 and ((epoch + 1) % training.checkpoint.every_epochs == 0 or last):
            with tempfile.TemporaryDirectory() as folder:
                state = {**runner.state(), "epoch": epoch, "history": history, "started_at_epoch": resumed_from,
                         "early_stopping": early.state()}
                if last:  # the kept model: the best epoch's weights
                    state["model"] = early.weights(runner.model)
                torch.save(state, os.path.join(folder, STATE_FILE))
                ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(folder))
        else:
            ray.train.report(metrics)
        if stop:
            break
