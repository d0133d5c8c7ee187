"""The distillation loss of Hinton et al. and the per-batch Distiller a training loop holds."""

from __future__ import annotations

import math
from dataclasses import dataclass

from framework.runtime.training.distill.loading import _error


# --- the loss -------------------------------------------------------------------------
def distillation_loss(student_logits, labels, teacher_logits, temperature: float, alpha: float):
    """alpha * KL(softmax(teacher / T) || softmax(student / T)) * T**2 + (1 - alpha) * CE.

    student_logits [n, classes] (with gradients), labels [n] class indices,
    teacher_logits [n, classes] (no gradient flows into them). KL is `batchmean` (the
    mathematically correct mean over rows) and scaled by T**2 so the soft gradients keep
    their magnitude as T grows (Hinton et al.). Returns a scalar tensor.
    """
    import torch.nn.functional as F

    _check_hyper(temperature, alpha)
    if teacher_logits.shape != student_logits.shape:
        raise _error(
            f"teacher logits of shape {tuple(teacher_logits.shape)} do not match the student's "
            f"{tuple(student_logits.shape)}: the teacher must output the student's classes for the same rows"
        )
    teacher_logits = teacher_logits.detach().to(device=student_logits.device, dtype=student_logits.dtype)
    soft_targets = F.softmax(teacher_logits / temperature, dim=1)
    soft_loss = F.kl_div(
        F.log_softmax(student_logits / temperature, dim=1), soft_targets, reduction="batchmean"
    ) * (temperature ** 2)
    hard_loss = F.cross_entropy(student_logits, labels)
    return alpha * soft_loss + (1 - alpha) * hard_loss


def _check_hyper(temperature: float, alpha: float) -> None:
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
        raise _error(f"temperature must be a number > 0, got {temperature!r}", "training.distillation.temperature")
    if not (isinstance(alpha, (int, float)) and 0.0 <= alpha <= 1.0):
        raise _error(f"alpha must be between 0 and 1, got {alpha!r}", "training.distillation.alpha")


def _settings(recipe):
    training = getattr(recipe, "training", None)
    settings = getattr(training, "distillation", None)
    if settings is None:
        raise _error("the recipe has no training.distillation", "training.distillation")
    return settings


def _require_classifier(task: str) -> None:
    if task != "classification":
        raise _error(
            f"distillation needs a classifier (soft targets are class distributions) but model.task is {task}: "
            "remove training.distillation or train a classifier",
            "training.distillation",
        )


@dataclass(frozen=True)
class Distiller:
    """The per-batch loss of a training loop that distils.

        distiller = Distiller.from_recipe(recipe)          # None without distillation
        teacher = torch.from_numpy(arrays["teacher_train"])  # recipe_teacher_logits(...)
        loss = distiller(model(x[batch]), y[batch], teacher[batch])

    Validation losses stay plain cross-entropy (comparable across runs with and
    without a teacher); `hard_loss` is that.
    """

    temperature: float = 2.0
    alpha: float = 0.5

    def __post_init__(self) -> None:
        _check_hyper(self.temperature, self.alpha)

    @classmethod
    def from_recipe(cls, recipe) -> Distiller | None:
        """None when the recipe has no training.distillation; an error for regression."""
        training = getattr(recipe, "training", None)
        settings = getattr(training, "distillation", None)
        if settings is None:
            return None
        _require_classifier(recipe.model.task)
        return cls(float(settings.temperature), float(settings.alpha))

    def __call__(self, student_logits, labels, teacher_logits):
        return distillation_loss(student_logits, labels, teacher_logits, self.temperature, self.alpha)

    @staticmethod
    def hard_loss(student_logits, labels):
        import torch.nn.functional as F

        return F.cross_entropy(student_logits, labels)
