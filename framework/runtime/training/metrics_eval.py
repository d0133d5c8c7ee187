"""Validation metrics and group fairness, in numpy.

scikit-learn is not a project dependency (the runtime image stays smaller), so the
metrics are written here and the tests compare them with scikit-learn where it is
installed. Conventions follow scikit-learn's defaults so numbers match tools people
already trust:
  - precision/recall/f1: binary -> the positive class is class index 1 (the second
    label of the target's in_set); multiclass -> macro average; 0/0 counts as 0.0;
  - roc_auc: binary -> P(score of a positive > score of a negative), ties counted half
    (the Mann-Whitney statistic); multiclass -> one-vs-rest, macro average;
  - log_loss: mean negative log probability of the true class, clipped away from 0;
  - r2: a constant target scores 1.0 when predicted exactly, else 0.0 (finite).
A metric that is undefined on the data (roc_auc with one class present) is NaN, and a
gate on a NaN metric fails.
"""

from __future__ import annotations

import numpy as np

from framework.errors import MlopsError, Problem

EPS = 1e-15


def evaluate(recipe, outputs: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """Every metric of `evaluation.metrics`, by name.

    outputs: probabilities [n, classes] (classification) or predictions [n] / [n, 1]
    (regression), as the model's forward returns them; targets: class indices or values.
    """
    outputs = np.asarray(outputs, dtype=np.float64)
    targets = np.asarray(targets)
    task = recipe.model.task
    results: dict[str, float] = {}
    for name in recipe.evaluation.metrics:
        if task == "classification" and name in _CLASSIFICATION:
            results[name] = float(_CLASSIFICATION[name](outputs, targets.astype(np.int64)))
        elif task == "regression" and name in _REGRESSION:
            results[name] = float(_REGRESSION[name](outputs.reshape(-1), targets.astype(np.float64).reshape(-1)))
        else:
            message = f"metric '{name}' can't be computed for a tabular {task} model"
            raise MlopsError([Problem(None, "evaluation.metrics", message)])
    return results


# --------------------------------------------------------------------- classification
def _labels(probabilities: np.ndarray) -> np.ndarray:
    return probabilities.argmax(axis=1)


def accuracy(probabilities: np.ndarray, targets: np.ndarray) -> float:
    return float(np.mean(_labels(probabilities) == targets)) if len(targets) else float("nan")


def _confusion(predicted: np.ndarray, targets: np.ndarray, positive: int) -> tuple[int, int, int]:
    tp = int(np.sum((predicted == positive) & (targets == positive)))
    fp = int(np.sum((predicted == positive) & (targets != positive)))
    fn = int(np.sum((predicted != positive) & (targets == positive)))
    return tp, fp, fn


def _divide(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


def _per_class(probabilities: np.ndarray, targets: np.ndarray):
    """(precision, recall, f1) per scored class: class 1 for binary, every class for macro."""
    predicted = _labels(probabilities)
    classes = [1] if probabilities.shape[1] == 2 else range(probabilities.shape[1])
    scores = []
    for positive in classes:
        tp, fp, fn = _confusion(predicted, targets, positive)
        precision, recall = _divide(tp, tp + fp), _divide(tp, tp + fn)
        scores.append((precision, recall, _divide(2 * tp, 2 * tp + fp + fn)))
    return np.array(scores)


def precision(probabilities: np.ndarray, targets: np.ndarray) -> float:
    return float(_per_class(probabilities, targets)[:, 0].mean())


def recall(probabilities: np.ndarray, targets: np.ndarray) -> float:
    return float(_per_class(probabilities, targets)[:, 1].mean())


def f1(probabilities: np.ndarray, targets: np.ndarray) -> float:
    return float(_per_class(probabilities, targets)[:, 2].mean())


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks with ties sharing their average rank (scipy's rankdata 'average')."""
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    ranks = np.empty(len(values), dtype=np.float64)
    # boundaries of runs of equal values
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    ends = np.r_[starts[1:], len(values)]
    for start, end in zip(starts, ends):
        ranks[order[start:end]] = (start + end + 1) / 2.0  # mean of ranks start+1 .. end
    return ranks


def binary_auc(scores: np.ndarray, positives: np.ndarray) -> float:
    positives = positives.astype(bool)
    n_pos, n_neg = int(positives.sum()), int((~positives).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = _average_ranks(scores)
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def roc_auc(probabilities: np.ndarray, targets: np.ndarray) -> float:
    if probabilities.shape[1] == 2:
        return binary_auc(probabilities[:, 1], targets == 1)
    aucs = [binary_auc(probabilities[:, k], targets == k) for k in range(probabilities.shape[1])]
    aucs = [a for a in aucs if not np.isnan(a)]  # a class absent from validation has no AUC
    return float(np.mean(aucs)) if aucs else float("nan")


def log_loss(probabilities: np.ndarray, targets: np.ndarray) -> float:
    if not len(targets):
        return float("nan")
    p = np.clip(probabilities[np.arange(len(targets)), targets], EPS, 1.0)
    return float(-np.mean(np.log(p)))


# --------------------------------------------------------------------- regression
def mse(predictions: np.ndarray, targets: np.ndarray) -> float:
    return float(np.mean((predictions - targets) ** 2))


def rmse(predictions: np.ndarray, targets: np.ndarray) -> float:
    return float(np.sqrt(mse(predictions, targets)))


def mae(predictions: np.ndarray, targets: np.ndarray) -> float:
    return float(np.mean(np.abs(predictions - targets)))


def r2(predictions: np.ndarray, targets: np.ndarray) -> float:
    residual = float(np.sum((targets - predictions) ** 2))
    total = float(np.sum((targets - targets.mean()) ** 2))
    if total == 0.0:
        return 1.0 if residual == 0.0 else 0.0
    return 1.0 - residual / total


_CLASSIFICATION = {
    "accuracy": accuracy,
    "precision": precision,
    "recall": recall,
    "f1": f1,
    "roc_auc": roc_auc,
    "log_loss": log_loss,
}
_REGRESSION = {"mse": mse, "rmse": rmse, "mae": mae, "r2": r2}


# --------------------------------------------------------------------- fairness
def fairness_disparity(recipe, predictions: np.ndarray, targets: np.ndarray, attribute_values) -> tuple[float, dict[str, float]]:
    """The largest gap of the fairness metric between groups of `gates.fairness.attribute`.

    predictions: probabilities [n, classes] (argmax is the predicted class) or predicted
    class indices [n]. The positive class is index 1 (binary). For a multiclass model
    each class is scored one-vs-rest and the largest gap over classes is returned.
      demographic_parity: rate of positive predictions per group;
      equal_opportunity:  true-positive rate per group (rows whose target is positive).
    Rows with a null attribute are left out; a group with no positive targets has no
    TPR and is left out of equal_opportunity. Fewer than two groups: disparity 0.
    Returns (disparity, {group: rate}) — per-group rates of class 1 for multiclass too.
    """
    fairness = recipe.evaluation.gates.fairness
    if fairness is None:
        raise MlopsError([Problem(None, "evaluation.gates.fairness", "no fairness gate is configured")])
    if recipe.model.task != "classification":
        message = "fairness disparity needs a classification model (positive predictions)"
        raise MlopsError([Problem(None, "evaluation.gates.fairness", message)])
    predictions = np.asarray(predictions)
    predicted = predictions.argmax(axis=1) if predictions.ndim == 2 else predictions.astype(np.int64)
    num_classes = predictions.shape[1] if predictions.ndim == 2 else recipe.model.num_classes
    targets = np.asarray(targets).astype(np.int64)
    groups = np.asarray([None if _null(v) else str(v) for v in attribute_values], dtype=object)
    positives = [1] if num_classes == 2 else list(range(num_classes))

    worst, per_group_of_1 = 0.0, {}
    for positive in positives:
        rates: dict[str, float] = {}
        for group in sorted({g for g in groups if g is not None}):
            rows = groups == group
            if fairness.metric == "equal_opportunity":
                rows = rows & (targets == positive)
                if not rows.any():
                    continue
            rates[group] = float(np.mean(predicted[rows] == positive))
        gap = max(rates.values()) - min(rates.values()) if len(rates) >= 2 else 0.0
        worst = max(worst, gap)
        if positive == 1:
            per_group_of_1 = rates
    return float(worst), per_group_of_1


def _null(value) -> bool:
    import pandas as pd  # None, NaN, pd.NA and NaT all count as missing

    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False
