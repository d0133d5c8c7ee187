"""Training on Ray Train: a TorchTrainer (DDP over gloo on CPU, nccl on GPU) with
checkpoints every `training.checkpoint.every_epochs`, keeping `keep`.

A run is named after the recipe hash: re-running the same recipe with the same
storage resumes from its latest checkpoint (Ray Train restores a run of the same name
and storage path), so an interrupted apply continues instead of starting over.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

STATE_FILE = "state.pt"


@dataclass(frozen=True)
class TrainResult:
    state_dict: dict[str, Any]  # the trained model's weights
    history: list[dict[str, float]]  # one entry per epoch: epoch, train_loss, val_loss
    started_at_epoch: int  # > 0 when the run resumed from a checkpoint
    checkpoint_dir: str | None


def train_on_ray(
    recipe_dict: dict[str, Any],
    pipeline_dict: dict[str, Any],
    arrays: dict[str, np.ndarray],
    storage: Path,
    run_name: str,
) -> TrainResult:
    """Train the recipe's model on the arrays (x_train, y_train, x_val, y_val).

    Ray must be initialised by the caller (embedded locally, or a cluster address).
    """
    import ray.train
    from ray.train.torch import TorchConfig, TorchTrainer

    training = recipe_dict["training"]
    use_gpu = float(training["gpus_per_worker"]) > 0
    trainer = TorchTrainer(
        _train_loop,
        train_loop_config={"recipe": recipe_dict, "pipeline": pipeline_dict, "arrays": ray.put(arrays)},
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
    result = trainer.fit()
    checkpoint = result.checkpoint
    if checkpoint is None:
        raise RuntimeError("training finished without a checkpoint")
    import torch

    with checkpoint.as_directory() as folder:
        state = torch.load(os.path.join(folder, STATE_FILE), map_location="cpu", weights_only=False)
    return TrainResult(state["model"], state["history"], state["started_at_epoch"], checkpoint.path)


def _train_loop(config: dict[str, Any]) -> None:
    """Runs on every Ray Train worker."""
    import ray
    import ray.train
    import ray.train.torch
    import torch

    from framework.recipe.recipe import Recipe
    from framework.runtime.features import FeaturePipeline
    from framework.runtime.model import build_model

    recipe = Recipe.model_validate(config["recipe"])
    training = recipe.training
    arrays = config["arrays"]
    arrays = ray.get(arrays) if isinstance(arrays, ray.ObjectRef) else arrays
    torch.manual_seed(training.seed)
    model = build_model(recipe, FeaturePipeline.from_dict(config["pipeline"]))
    optimizer = _optimizer(training.optimizer, model.parameters())

    started_at, history = 0, []
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is not None:  # resume: same weights, optimizer state and epoch
        with checkpoint.as_directory() as folder:
            state = torch.load(os.path.join(folder, STATE_FILE), map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        started_at, history = state["epoch"] + 1, state["history"]
    resumed_from = started_at

    core = model
    model = ray.train.torch.prepare_model(_logits_module(core))  # DDP syncs gradients in forward
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    x_train = torch.from_numpy(arrays["x_train"][rank::world])
    y_train = torch.from_numpy(arrays["y_train"][rank::world])
    x_val, y_val = torch.from_numpy(arrays["x_val"]), torch.from_numpy(arrays["y_val"])
    loss_fn = _loss(recipe)

    for epoch in range(started_at, training.epochs):
        model.train()
        generator = torch.Generator().manual_seed(training.seed + epoch)
        order = torch.randperm(len(x_train), generator=generator)
        total, seen = 0.0, 0
        for start in range(0, len(order), training.batch_size):
            batch = order[start:start + training.batch_size]
            optimizer.zero_grad()
            loss = loss_fn(model(x_train[batch]), y_train[batch])
            loss.backward()
            optimizer.step()
            total += float(loss) * len(batch)
            seen += len(batch)
        model.eval()
        with torch.no_grad():
            val_loss = float(loss_fn(core.logits(x_val), y_val))
        metrics = {"epoch": epoch, "train_loss": total / max(seen, 1), "val_loss": val_loss}
        history.append(metrics)
        last = epoch == training.epochs - 1
        if rank == 0 and ((epoch + 1) % training.checkpoint.every_epochs == 0 or last):
            with tempfile.TemporaryDirectory() as folder:
                torch.save(
                    {"model": core.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch,
                     "history": history, "started_at_epoch": resumed_from},
                    os.path.join(folder, STATE_FILE),
                )
                ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(folder))
        else:
            ray.train.report(metrics)


def _logits_module(core):
    """The model trains on logits (stable cross-entropy) but serves probabilities:
    a thin module whose forward is the logits head, sharing the model's parameters."""
    import torch

    class Logits(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner.logits(x)

    return Logits(core)


def _optimizer(settings, parameters):
    import torch

    if settings.name == "sgd":
        return torch.optim.SGD(parameters, lr=settings.lr, momentum=settings.momentum, weight_decay=settings.weight_decay)
    if settings.name == "rmsprop":
        return torch.optim.RMSprop(parameters, lr=settings.lr, momentum=settings.momentum, weight_decay=settings.weight_decay)
    cls = torch.optim.AdamW if settings.name == "adamw" else torch.optim.Adam
    return cls(parameters, lr=settings.lr, weight_decay=settings.weight_decay)


def _loss(recipe):
    import torch

    if recipe.model.task == "regression":
        mse = torch.nn.MSELoss()
        return lambda out, y: mse(out.squeeze(-1), y.float())
    return torch.nn.CrossEntropyLoss()
