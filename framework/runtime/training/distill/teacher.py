"""The teacher's logits for the student's rows: loaded once on the driver, checked against
the student's columns and classes (reordered when only the order differs), run in
batches, its probabilities turned into logits."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from framework.errors import MlopsError
from framework.runtime.training.distill.loading import (
    BATCH,
    ONNX_PROBABILITIES,
    PROBABILITY_FLOOR,
    PROBABILITY_TOLERANCE,
    _download,
    _error,
    _load,
    _names,
    _pipeline_columns,
    _Teacher,
)
from framework.runtime.training.distill.loss import _require_classifier, _settings


def teacher_logits(
    uri: str,
    x: np.ndarray,
    *,
    tracking_uri: str,
    expected_features: Sequence[str] | None = None,
    num_classes: int | None = None,
    expected_classes: Sequence[Any] | None = None,
    raw: dict[str, np.ndarray] | None = None,
) -> np.ndarray:
    """The teacher's logits for the student's feature matrix x: float32 [n, classes].

    uri: `models:/name@alias`, `models:/name/<version>`, `runs:/<id>/<path>` or an
    artifact URI; tracking_uri: the MLflow tracking/registry the names resolve in.
    x: the student's input in the model signature's layout (imputed raw values and
    one-hot columns, as FeaturePipeline.transform gives it; the framework's models
    standardise inside themselves). expected_features: the student's input column
    names (`pipeline.columns`), checked against the teacher's feature_pipeline.json.
    num_classes: the student's output width. expected_classes: the student's class
    labels in index order, checked against (and used to reorder) the teacher's.
    raw: the same rows as request tensors (FeaturePipeline.raw_inputs): a teacher this
    framework exported takes raw columns (framework/signature.py), and runs on these.
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise _error(f"{uri}: the student's feature matrix must be 2-D [rows, features], got shape {x.shape}")
    if expected_features is not None and len(expected_features) != x.shape[1]:
        raise _error(
            f"{uri}: the student's feature matrix has {x.shape[1]} columns but {len(expected_features)} "
            "feature names were given; pass pipeline.columns of the pipeline that made x"
        )
    with tempfile.TemporaryDirectory(prefix="mlops-teacher-") as scratch:
        local = _download(uri, tracking_uri, Path(scratch))
        teacher = _load(uri, local)
        order = _check_classes(teacher, num_classes, expected_classes)
        if teacher.raw_columns is not None:
            outputs = _run_raw(teacher, _check_raw(teacher, raw), len(x))
        else:
            x = _check_inputs(teacher, x, expected_features)
            outputs = _run_batches(teacher, x)
    logits = _to_logits(teacher, outputs, len(x))
    if order is not None:
        logits = logits[:, order]
    if num_classes is not None and logits.shape[1] != num_classes:
        raise _error(
            f"{uri}: the teacher outputs {logits.shape[1]} classes but the student has {num_classes} "
            "(model.num_classes): distil from a teacher trained on the same classes"
        )
    return np.ascontiguousarray(logits, dtype=np.float32)


def recipe_teacher_logits(recipe, pipeline, x: np.ndarray, *, tracking_uri: str, raw=None) -> np.ndarray:
    """`teacher_logits` for a recipe with `training.distillation`: the teacher URI, the
    student's feature names, classes and class count all come from recipe and pipeline.
    tracking_uri: `tracking.tracking_uri(recipe, state_dir)` (the run's `run.uri`)."""
    settings = _settings(recipe)
    _require_classifier(recipe.model.task)
    return teacher_logits(
        settings.teacher,
        x,
        tracking_uri=tracking_uri,
        expected_features=list(pipeline.columns),
        num_classes=recipe.model.num_classes,
        expected_classes=pipeline.classes,
        raw=raw,
    )



# --- compatibility --------------------------------------------------------------------
def _check_inputs(teacher: _Teacher, x: np.ndarray, expected: Sequence[str] | None) -> np.ndarray:
    """x in the teacher's column order; errors for other features or another width."""
    uri = teacher.uri
    names = _pipeline_columns(teacher.pipeline) if teacher.pipeline is not None else teacher.input_columns
    if expected is not None and names is not None:
        expected = [str(name) for name in expected]
        if names != expected:
            missing = [n for n in expected if n not in names]
            extra = [n for n in names if n not in expected]
            if missing or extra or sorted(names) != sorted(expected):
                parts = []
                if missing:
                    parts.append(f"the teacher lacks {_names(missing)}")
                if extra:
                    parts.append(f"only the teacher has {_names(extra)}")
                if not parts:
                    parts.append("a column is repeated")
                raise _error(
                    f"{uri}: the teacher was trained on other features than the student ({'; '.join(parts)}): "
                    "train the teacher on the student's data.features (and in_set categories) or pick another teacher"
                )
            # Same columns, another order (data.features listed differently): feed the teacher its layout.
            x = np.ascontiguousarray(x[:, [expected.index(n) for n in names]])
    if teacher.input_width is not None and x.shape[1] != teacher.input_width:
        raise _error(
            f"{uri}: the student's rows have {x.shape[1]} features but the teacher takes {teacher.input_width}: "
            "distil from a teacher trained on the same features"
        )
    return x


def _check_classes(teacher: _Teacher, num_classes: int | None, expected: Sequence[Any] | None) -> list[int] | None:
    """The permutation of the teacher's output columns into the student's class order
    (None: keep), from the pipeline's classes; errors for other classes."""
    classes = None if teacher.pipeline is None else teacher.pipeline.get("classes")
    if classes is None:
        return None
    uri = teacher.uri
    if num_classes is not None and len(classes) != num_classes:
        raise _error(
            f"{uri}: the teacher outputs {len(classes)} classes ({_names(classes)}) but the student has "
            f"{num_classes} (model.num_classes): distil from a teacher trained on the same classes"
        )
    if expected is None:
        return None
    from framework.runtime.training.features import category_key

    theirs = [category_key(c) for c in classes]
    ours = [category_key(c) for c in expected]
    if theirs == ours:
        return None
    if sorted(theirs) != sorted(ours):
        raise _error(
            f"{uri}: the teacher's classes ({_names(classes)}) are not the student's ({_names(list(expected))}): "
            "distil from a teacher trained on the same target"
        )
    return [theirs.index(key) for key in ours]




def _check_raw(teacher: _Teacher, raw: dict[str, np.ndarray] | None) -> dict[str, np.ndarray]:
    uri = teacher.uri
    if raw is None:
        raise _error(f"{uri}: the teacher takes raw columns ({_names(teacher.raw_columns)}); pass the student's rows as raw=")
    missing = [c for c in teacher.raw_columns if c not in raw]
    if missing:
        raise _error(
            f"{uri}: the teacher takes column(s) {_names(missing)} that the student's data.features lack: "
            "distil from a teacher trained on the same features"
        )
    return {c: raw[c] for c in teacher.raw_columns}


def _run_raw(teacher: _Teacher, raw: dict[str, np.ndarray], rows: int) -> np.ndarray:
    parts = []
    for start in range(0, max(rows, 1), BATCH):
        batch = {c: values[start:start + BATCH] for c, values in raw.items()}
        try:
            parts.append(_as_matrix(teacher.uri, teacher.run(batch)))
        except MlopsError:
            raise
        except Exception as exc:  # the model's own error: a dtype, a category type
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise _error(f"{teacher.uri}: the teacher failed on the student's rows: {detail}") from None
    return np.concatenate(parts) if len(parts) > 1 else parts[0]


# --- running --------------------------------------------------------------------------
def _run_batches(teacher: _Teacher, x: np.ndarray) -> np.ndarray:
    parts = []
    for start in range(0, max(len(x), 1), BATCH):
        batch = x[start:start + BATCH]
        try:
            out = teacher.run(batch)
        except MlopsError:
            raise
        except Exception as exc:  # the model's own error: a shape, a dtype, a missing column
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise _error(
                f"{teacher.uri}: the teacher failed on the student's rows ({x.shape[1]} features): {detail}: "
                "distil from a teacher trained on the same features"
            ) from None
        parts.append(_as_matrix(teacher.uri, out))
    return np.concatenate(parts) if len(parts) > 1 else parts[0]


def _as_matrix(uri: str, out: Any) -> np.ndarray:
    """A model's output as a float64 [n, k] array (pandas, dicts of one tensor, tensors)."""
    if isinstance(out, dict):
        if ONNX_PROBABILITIES in out:
            out = out[ONNX_PROBABILITIES]
        elif len(out) == 1:
            out = next(iter(out.values()))
        else:
            raise _error(f"{uri}: the teacher returns several outputs ({_names(sorted(out))}); it must return one [rows, classes]")
    if hasattr(out, "detach"):  # a torch tensor from a custom pyfunc
        out = out.detach().cpu().numpy()
    try:
        array = np.asarray(out, dtype=np.float64)
    except (TypeError, ValueError):
        raise _error(f"{uri}: the teacher's output is not numeric ({type(out).__name__}): it must return [rows, classes] scores") from None
    if array.ndim != 2:
        raise _error(
            f"{uri}: the teacher returns shape {array.shape}, not [rows, classes] (class labels or one score per row?): "
            "log a model that outputs class probabilities or logits (sklearn: pyfunc_predict_fn='predict_proba')"
        )
    return array


def _to_logits(teacher: _Teacher, raw: np.ndarray, rows: int) -> np.ndarray:
    uri = teacher.uri
    if raw.shape[0] != rows:
        raise _error(f"{uri}: the teacher returned {raw.shape[0]} rows for {rows}")
    if not np.all(np.isfinite(raw)):
        raise _error(f"{uri}: the teacher's output has NaN or infinite values on the student's rows")
    probabilities = teacher.outputs_probabilities
    if probabilities is None:
        probabilities = _looks_like_probabilities(raw)
    if not probabilities:
        return raw.astype(np.float32)
    # log p = z - logsumexp(z): the logits less a per-row constant, and softmax ignores a
    # per-row constant, also after dividing by T (it becomes c / T). So
    # softmax(log(p) / T) == softmax(z / T): the soft targets are those of the teacher's
    # own logits. The clip only moves probabilities below 1e-7 (saturated float32).
    return np.log(np.clip(raw, PROBABILITY_FLOOR, None)).astype(np.float32)


def _looks_like_probabilities(raw: np.ndarray) -> bool:
    """The documented rule: every value in [0, 1] and every row summing to 1."""
    if raw.size == 0:
        return True
    tolerance = PROBABILITY_TOLERANCE
    in_range = raw.min() >= -tolerance and raw.max() <= 1 + tolerance
    return bool(in_range and np.all(np.abs(raw.sum(axis=1) - 1.0) <= tolerance))
