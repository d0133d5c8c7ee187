"""One worker's training state and its epochs: shared by the Ray Train workers of the
final model and by the single-process HPO trials, so both train the very same way."""

from __future__ import annotations

from typing import Any

import numpy as np


class EpochRunner:
    """Model, optimizer, loss and this worker's shard (rows rank::world) of the data.

    arrays: x_train, y_train, x_val, y_val and, with training.distillation, t_train
    (the teacher's logits for x_train, computed once by the driver).
    """

    def __init__(self, recipe, pipeline_dict: dict[str, Any], arrays: dict[str, np.ndarray], rank: int = 0, world: int = 1):
        import torch

        from framework.runtime.training.features import FeaturePipeline
        from framework.runtime.training.model import build_model

        self.recipe = recipe
        self.training = recipe.training
        torch.manual_seed(self.training.seed)
        self.model = build_model(recipe, FeaturePipeline.from_dict(pipeline_dict))
        self.optimizer = make_optimizer(self.training.optimizer, self.model.parameters())
        self.scheduler = make_scheduler(self.training, self.optimizer)
        self.x_train = torch.from_numpy(np.ascontiguousarray(arrays["x_train"][rank::world]))
        self.y_train = torch.from_numpy(np.ascontiguousarray(arrays["y_train"][rank::world]))
        teacher = arrays.get("t_train") if self.training.distillation is not None else None
        self.t_train = None if teacher is None else torch.from_numpy(np.ascontiguousarray(teacher[rank::world]))
        self.x_val, self.y_val = torch.from_numpy(arrays["x_val"]), torch.from_numpy(arrays["y_val"])
        self.y_val_np = arrays["y_val"]
        self.loss_fn = make_loss(recipe, self.model)

    def train_epoch(self, epoch: int, module=None) -> float:
        """One pass in a seeded order; `module` is the logits module to step (DDP-wrapped
        on Ray Train), default this model's logits. Returns the mean training loss."""
        import torch

        forward = module if module is not None else self.model.logits
        self.model.train()
        generator = torch.Generator().manual_seed(self.training.seed + epoch)
        order = torch.randperm(len(self.x_train), generator=generator)
        total, seen = 0.0, 0
        size = self.training.batch_size
        for start in range(0, len(order), size):
            batch = order[start:start + size]
            self.optimizer.zero_grad()
            logits = forward(self.x_train[batch])
            if self.t_train is None:
                loss = self.loss_fn(logits, self.y_train[batch])
            else:
                loss = self._distillation_loss(logits, self.y_train[batch], self.t_train[batch])
            loss.backward()
            self.optimizer.step()
            total += loss.item() * len(batch)
            seen += len(batch)
        return total / max(seen, 1)

    def _distillation_loss(self, logits, labels, teacher):
        from framework.runtime.training.distill import distillation_loss

        settings = self.training.distillation
        return distillation_loss(logits, labels, teacher, settings.temperature, settings.alpha)

    def validate(self) -> dict[str, float]:
        """val_loss and every evaluation metric on the validation split."""
        import torch

        from framework.runtime.training.metrics_eval import evaluate

        self.model.eval()
        with torch.no_grad():
            logits = self.model.logits(self.x_val)
            val_loss = float(self.loss_fn(logits, self.y_val))
            outputs = torch.softmax(logits, dim=-1) if self.recipe.model.task == "classification" else (
                logits * self.model.target_std + self.model.target_mean
            )
        metrics = {"val_loss": val_loss}
        try:
            metrics.update({f"val_{k}": v for k, v in evaluate(self.recipe, outputs.numpy(), self.y_val_np).items()})
        except ValueError:  # e.g. roc_auc on a split with one class: the loss still tells
            pass
        return metrics

    def schedule(self, val_loss: float) -> float:
        """The end of an epoch for the learning rate; returns the next epoch's rate."""
        if self.scheduler is not None:
            if self.training.lr_schedule.name == "plateau":
                self.scheduler.step(val_loss)
            else:
                self.scheduler.step()
        return float(self.optimizer.param_groups[0]["lr"])

    def state(self) -> dict[str, Any]:
        state = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict()}
        if self.scheduler is not None:
            state["scheduler"] = self.scheduler.state_dict()
        return state

    def restore(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and "scheduler" in state:
            self.scheduler.load_state_dict(state["scheduler"])


class EarlyStop:
    """`training.early_stopping`: tracks the best validation loss and that epoch's weights.

    Every worker sees the same validation loss (the full validation split, on weights DDP
    keeps equal), so all decide to stop at the same epoch and none waits in a collective.
    """

    def __init__(self, settings):
        self.settings = settings
        self.best_loss = float("inf")
        self.best_epoch = -1
        self.best_model: dict[str, Any] | None = None
        self.waited = 0

    def observe(self, epoch: int, val_loss: float, model) -> bool:
        """Record an epoch; True when training should stop now."""
        import copy

        if self.settings is None:
            self.best_epoch, self.best_model = epoch, None
            return False
        if val_loss < self.best_loss - self.settings.min_delta or self.best_epoch < 0:
            self.best_loss, self.best_epoch, self.waited = val_loss, epoch, 0
            self.best_model = copy.deepcopy(model.state_dict())
            return False
        self.waited += 1
        return self.waited >= self.settings.patience

    def weights(self, model) -> dict[str, Any]:
        """The weights to keep: the best epoch's (the last epoch's without early stopping)."""
        return self.best_model if self.best_model is not None else model.state_dict()

    def state(self) -> dict[str, Any]:
        return {"best_loss": self.best_loss, "best_epoch": self.best_epoch, "best_model": self.best_model,
                "waited": self.waited}

    def restore(self, state: dict[str, Any] | None) -> None:
        if state:
            self.best_loss, self.best_epoch = state["best_loss"], state["best_epoch"]
            self.best_model, self.waited = state["best_model"], state["waited"]


def logits_module(core):
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


def make_optimizer(settings, parameters):
    import torch

    if settings.name == "sgd":
        return torch.optim.SGD(parameters, lr=settings.lr, momentum=settings.momentum, weight_decay=settings.weight_decay)
    if settings.name == "rmsprop":
        return torch.optim.RMSprop(parameters, lr=settings.lr, momentum=settings.momentum, weight_decay=settings.weight_decay)
    cls = torch.optim.AdamW if settings.name == "adamw" else torch.optim.Adam
    return cls(parameters, lr=settings.lr, weight_decay=settings.weight_decay)


def make_scheduler(training, optimizer):
    """training.lr_schedule as a torch scheduler stepped once per epoch (None: constant)."""
    import torch

    settings = training.lr_schedule
    if settings.name == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=settings.factor,
                                                          patience=settings.patience)
    if settings.name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=training.epochs)
    return None


def make_loss(recipe, model):
    """Cross-entropy on logits; for regression, MSE on the standardised target (the
    model's target_mean/target_std buffers), so the loss is scale-free."""
    import torch

    if recipe.model.task == "regression":
        mse = torch.nn.MSELoss()
        return lambda out, y: mse(out.squeeze(-1), model.scaled_target(y.float()))
    return torch.nn.CrossEntropyLoss()
