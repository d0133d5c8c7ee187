"""Rules mainly about `training`: whole GPUs for a PyTorchJob, what distillation needs of
the model, checkpoints that are written at all, and the hyperparameter search (its
metric is computed, its keys exist and may be tuned).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from framework.recipe.checks.base import Violation, check
from framework.recipe.model import TabularModel
from framework.recipe.recipe import Recipe
from framework.recipe.suggest import did_you_mean


@check
def whole_gpus_for_pytorchjob(r: Recipe) -> Iterator[Violation]:
    if r.training is not None and r.training.engine == "pytorchjob" and r.training.gpus_per_worker % 1:
        yield Violation(
            ("training.gpus_per_worker", "training.engine"),
            f"training.gpus_per_worker {r.training.gpus_per_worker} must be whole with training.engine pytorchjob: "
            "pods get whole GPUs (fractions work with engine ray)",
        )


@check
def hpo_metric_is_evaluated(r: Recipe) -> Iterator[Violation]:
    hpo = r.training.hpo if r.training else None
    if hpo is None:
        return
    evaluated = [*r.evaluation.metrics, "loss"]
    if hpo.metric not in evaluated:
        yield Violation(
            ("training.hpo.metric", "evaluation.metrics"),
            f"training.hpo.metric '{hpo.metric}' is not computed: use loss or one of evaluation.metrics "
            f"({', '.join(r.evaluation.metrics)}){did_you_mean(hpo.metric, evaluated)}",
        )


_TUNABLE = ("model.", "training.")
_NOT_TUNABLE = ("training.hpo.", "training.distillation.", "training.engine", "model.kind", "model.task")
_MISSING = object()


@check
def hpo_keys_exist(r: Recipe) -> Iterator[Violation]:
    hpo = r.training.hpo if r.training else None
    if hpo is None:
        return
    tree = r.model_dump()
    for key, param in hpo.search_space.items():
        if not key.startswith(_TUNABLE) or key.startswith(_NOT_TUNABLE):
            yield Violation(
                (f"training.hpo.search_space.{key}",),
                f"training.hpo.search_space.{key}: only model.* and training.* keys can be tuned "
                "(the data, its split and the search itself stay fixed across trials)",
            )
            continue
        value: Any = tree
        for part in key.split("."):
            value = value.get(part, _MISSING) if isinstance(value, dict) else _MISSING
        if value is _MISSING:
            yield Violation(
                (f"training.hpo.search_space.{key}",),
                f"training.hpo.search_space.{key}: '{key}' is not a key of the recipe "
                "(write a dotted path such as training.optimizer.lr)",
            )
        elif param.type in ("float", "int") and (isinstance(value, bool) or not isinstance(value, (int, float))):
            yield Violation(
                (f"training.hpo.search_space.{key}",),
                f"training.hpo.search_space.{key} is a {param.type} range but the recipe value is {type(value).__name__}",
            )


@check
def distillation_needs_tabular(r: Recipe) -> Iterator[Violation]:
    if r.training is None or r.training.distillation is None:
        return
    if not isinstance(r.model, TabularModel):
        yield Violation(("training.distillation", "model.kind"), "training.distillation needs model.kind tabular")
    elif r.model.task != "classification":
        yield Violation(("training.distillation", "model.task"),
                        "training.distillation needs model.task classification (soft targets are class probabilities)")


@check
def checkpoints_within_epochs(r: Recipe) -> Iterator[Violation]:
    if r.training is not None and r.training.checkpoint.every_epochs > r.training.epochs:
        yield Violation(
            ("training.checkpoint.every_epochs", "training.epochs"),
            f"training.checkpoint.every_epochs ({r.training.checkpoint.every_epochs}) exceeds training.epochs "
            f"({r.training.epochs}): no checkpoint would be written, so nothing could resume",
        )
