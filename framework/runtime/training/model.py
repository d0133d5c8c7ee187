"""The tabular network: signature input in, signature output out.

The exported graph IS this module, so it carries everything between the raw input
contract and the output contract:
  - standardisation as buffers (mean/std from the FeaturePipeline's training split):
    clients send imputed raw values + one-hot, never scaled ones, and the ONNX and
    TorchScript files can't drift from the statistics the weights were trained on;
  - softmax for classification, since the contract's output is `probabilities`;
  - for regression, the target's training mean/std as buffers: the network learns the
    standardised target (a raw target of mean 615 and sd 325 would leave the initial
    outputs hundreds of units away and the loss dominated by the scale), and forward()
    answers in the target's own units.
Training uses `logits()` (cross-entropy wants logits: softmax + log is less stable; for
regression, the standardised prediction).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from framework.errors import MlopsError, Problem

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh, "silu": nn.SiLU}


class TabularNet(nn.Module):
    def __init__(
        self,
        *,
        width: int,
        outputs: int,
        task: str,
        hidden_sizes: list[int],
        activation: str = "relu",
        dropout: float = 0.0,
        batch_norm: bool = False,
        mean: np.ndarray | None = None,
        std: np.ndarray | None = None,
        target_mean: float = 0.0,
        target_std: float = 1.0,
    ):
        super().__init__()
        self.width = width
        self.outputs = outputs
        self.task = task
        mean = np.zeros(width, dtype=np.float32) if mean is None else np.asarray(mean, dtype=np.float32)
        std = np.ones(width, dtype=np.float32) if std is None else np.asarray(std, dtype=np.float32)
        # Buffers: saved in state_dict, moved by .to(), constants in the exported graph.
        self.register_buffer("mean", torch.from_numpy(mean.copy()))
        self.register_buffer("std", torch.from_numpy(std.copy()))
        self.register_buffer("target_mean", torch.tensor(float(target_mean), dtype=torch.float32))
        self.register_buffer("target_std", torch.tensor(float(target_std), dtype=torch.float32))
        layers: list[nn.Module] = []
        size = width
        for hidden in hidden_sizes:
            layers.append(nn.Linear(size, hidden))
            if batch_norm:
                layers.append(nn.BatchNorm1d(hidden))
            layers.append(ACTIVATIONS[activation]())
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            size = hidden
        layers.append(nn.Linear(size, outputs))
        self.body = nn.Sequential(*layers)

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        """Raw scores (classification) or the prediction (regression); for the loss."""
        return self.body((features - self.mean) / self.std)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        out = self.logits(features)
        if self.task == "classification":
            return torch.softmax(out, dim=-1)
        return out * self.target_std + self.target_mean

    def scaled_target(self, target: torch.Tensor) -> torch.Tensor:
        """A regression target in the units logits() predicts."""
        return (target - self.target_mean) / self.target_std


def build_model(recipe, pipeline) -> TabularNet:
    """A freshly initialised network for a tabular recipe, seeded by training.seed.

    `architecture: linear` is the same module without hidden layers (logistic or linear
    regression with the in-graph standardisation). Initialisation runs under a forked
    RNG, so building a model neither depends on nor disturbs the caller's torch seed.
    """
    model_cfg = recipe.model
    if model_cfg.kind != "tabular":
        raise MlopsError([Problem(None, "model.kind", f"build_model needs a tabular model, not {model_cfg.kind}")])
    if model_cfg.task == "classification" and pipeline.num_outputs != model_cfg.num_classes:
        message = f"model.num_classes is {model_cfg.num_classes} but the pipeline has {pipeline.num_outputs} classes"
        raise MlopsError([Problem(None, "model.num_classes", message)])
    hidden = list(model_cfg.hidden_sizes) if model_cfg.architecture == "mlp" else []
    mean, std = pipeline.standardisation()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(recipe.training.seed)
        return TabularNet(
            width=pipeline.width,
            outputs=model_cfg.num_classes if model_cfg.task == "classification" else 1,
            task=model_cfg.task,
            hidden_sizes=hidden,
            activation=model_cfg.activation,
            dropout=model_cfg.dropout,
            batch_norm=model_cfg.batch_norm,
            mean=mean,
            std=std,
            target_mean=pipeline.target_mean,
            target_std=pipeline.target_std,
        )


def predict(model: nn.Module, features: np.ndarray, batch_size: int = 4096) -> np.ndarray:
    """Forward pass in eval mode without gradients (dropout off, batch norm frozen).

    Restores the module's previous train/eval mode, so a training loop may call it
    between epochs. Returns probabilities [n, classes] or predictions [n, 1].
    """
    was_training = model.training
    model.eval()
    try:
        outputs = []
        with torch.no_grad():
            for start in range(0, len(features), batch_size):
                batch = torch.from_numpy(np.ascontiguousarray(features[start : start + batch_size], dtype=np.float32))
                outputs.append(model(batch).cpu().numpy())
        if not outputs:
            return np.zeros((0, getattr(model, "outputs", 1)), dtype=np.float32)
        return np.concatenate(outputs)
    finally:
        model.train(was_training)
