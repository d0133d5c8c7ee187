"""Rows of a table -> the network's encoded FP32 matrix, and the raw request tensors.

The exported model takes raw columns (framework/signature.py) and carries this
pipeline inside its graph (export.py builds the ONNX preprocessing from `to_dict`):
training encodes the same way here, so the graph and the training data cannot differ,
and export's parity check runs both on the same rows.

Encoded layout: numeric features in `data.features` order, then each categorical
feature's one-hot (its categories: `in_set` when the recipe lists them, else the values
of the training split, sorted). What the pipeline learns comes from the TRAINING split
alone (the validation split stays unseen):
  - the median of each numeric feature, which fills its nulls;
  - the mean and standard deviation of each numeric feature (after imputation), which
    the network applies as buffers (model.py);
  - the class labels of a classifier, in index order, and the mean and standard
    deviation of a regression target (the network learns the standardised target and
    its exported graph answers in the target's own units).
Everything it learns is JSON-safe (`to_dict`), so it is logged with the run and a served
or re-evaluated model is rebuilt from it without the training data.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from framework.errors import MlopsError, Problem

FORMAT_VERSION = 2


def category_key(value: Any) -> str:
    """A comparable key of a category or class label.

    CSV and parquet readers type columns on their own (`1` may come back as 1, 1.0,
    True or "1"), while in_set keeps the YAML's types; comparing keys makes those agree.
    Integral numbers lose their `.0`, booleans are lower-case, strings stay as they are.
    """
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def _json_value(value: Any) -> Any:
    """numpy scalars -> plain Python, so labels survive json.dumps."""
    return value.item() if isinstance(value, np.generic) else value


def _label_order(value: Any) -> tuple:
    """Numbers numerically (2 before 10), then text; mixed labels still sort deterministically."""
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_)):
        return (0, float(value), "")
    return (1, 0.0, category_key(value))


_FACTORIZABLE = {"integer", "floating", "mixed-integer-float", "boolean"}  # one Python type family: equal values, equal keys


def category_keys(column: pd.Series) -> np.ndarray:
    """category_key of every value ("" for a null), as an object array: per distinct value
    for a column of one type family (a batch of 8,192 rows has a handful), per value only
    for mixed columns (where True == 1 would merge two keys)."""
    kind = pd.api.types.infer_dtype(column, skipna=True)
    if kind in ("string", "empty"):
        keys = column.to_numpy(dtype=object, copy=True)
        keys[column.isna().to_numpy()] = ""
        return keys
    if kind in _FACTORIZABLE:
        codes, uniques = pd.factorize(column, use_na_sentinel=True)
        table = np.array([category_key(v) for v in uniques] + [""], dtype=object)
        return table[codes]  # -1 (a null) picks the trailing ""
    return np.array(["" if _is_null(v) else category_key(v) for v in column.to_numpy()], dtype=object)


def _is_null(value: Any) -> bool:
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


class FeaturePipeline:
    """Encodes a DataFrame into the signature's input matrix; fitted on training rows."""

    def __init__(
        self,
        *,
        features: list[str] | None = None,
        numeric: list[str],
        categorical: dict[str, list[Any]],
        target: str,
        task: str,
        classes: list[Any] | None,
        medians: dict[str, float],
        means: dict[str, float],
        stds: dict[str, float],
        target_mean: float = 0.0,
        target_std: float = 1.0,
    ):
        self.numeric = list(numeric)
        self.categorical = {name: list(values) for name, values in categorical.items()}
        self._order = list(features) if features else [*self.numeric, *self.categorical]
        self.target = target
        self.task = task
        self.classes = None if classes is None else list(classes)
        self.medians = dict(medians)
        self.means = dict(means)
        self.stds = dict(stds)
        self.target_mean = float(target_mean)
        self.target_std = float(target_std)
        self._class_index = None if classes is None else {category_key(c): i for i, c in enumerate(classes)}

    # ------------------------------------------------------------------ fitting
    @classmethod
    def fit(cls, recipe, train_df: pd.DataFrame) -> FeaturePipeline:
        """Learn medians, means, stds and class labels from the training rows only."""
        data, model = recipe.data, recipe.model
        categorical_names = set(data.categorical)
        numeric = [feature for feature in data.features if feature not in categorical_names]
        missing = [c for c in [*data.features, data.target] if c not in train_df.columns]
        if missing:
            raise MlopsError([Problem(None, "data.features", f"training data has no column {', '.join(missing)}")])

        medians: dict[str, float] = {}
        means: dict[str, float] = {}
        stds: dict[str, float] = {}
        for name in numeric:
            values = _numeric(train_df[name], name)
            median = float(np.nanmedian(values)) if np.isfinite(values).any() else 0.0  # all-null: impute 0
            filled = np.where(np.isnan(values), median, values)
            std = float(filled.std())
            medians[name] = median
            means[name] = float(filled.mean())
            # A constant column would divide by zero; 1.0 leaves it centred at 0.
            stds[name] = std if std > 1e-12 else 1.0

        categorical = {
            name: _categories(data, name, train_df[name]) for name in data.features if name in categorical_names
        }
        classes, target_mean, target_std = None, 0.0, 1.0
        if model.task == "regression":
            target = _numeric(train_df[data.target], data.target)
            target = target[np.isfinite(target)]
            if target.size:
                target_mean, target_std = float(target.mean()), float(target.std())
            target_std = target_std if target_std > 1e-12 else 1.0
        if model.task == "classification":
            expectation = data.expectations.columns.get(data.target)
            if expectation is not None and expectation.in_set:
                classes = list(expectation.in_set)  # the recipe's order: stable across retrains
            else:
                observed = pd.unique(train_df[data.target].dropna())
                classes = [_json_value(v) for v in sorted(observed, key=_label_order)]
            if len(classes) != model.num_classes:
                message = (
                    f"model.num_classes is {model.num_classes} but the target '{data.target}' has "
                    f"{len(classes)} classes ({', '.join(map(str, classes))}); the output width must match"
                )
                raise MlopsError([Problem(None, "model.num_classes", message)])
        return cls(
            features=list(data.features),
            numeric=numeric,
            categorical=categorical,
            target=data.target,
            task=model.task,
            classes=classes,
            medians=medians,
            means=means,
            stds=stds,
            target_mean=target_mean,
            target_std=target_std,
        )

    # ------------------------------------------------------------------ encoding
    @property
    def features(self) -> tuple[str, ...]:
        """The raw feature columns, in `data.features` order: the model's inputs."""
        return tuple(self._order)

    @property
    def class_names(self) -> list[str] | None:
        """The classes as the model's `label` output spells them."""
        return None if self.classes is None else [category_key(c) for c in self.classes]

    def raw_inputs(self, df: pd.DataFrame) -> dict[str, np.ndarray]:
        """The model's request tensors for these rows: {column: [rows, 1]}, FP32 for a
        numeric feature (NaN for a null) and text (object) for a categorical one (the
        category's key, "" for a null): exactly what a client sends."""
        inputs: dict[str, np.ndarray] = {}
        for name in self._order:
            if name in self.categorical:
                inputs[name] = category_keys(df[name]).reshape(-1, 1)
            else:
                inputs[name] = _numeric(df[name], name).astype(np.float32).reshape(-1, 1)
        return inputs

    @property
    def columns(self) -> tuple[str, ...]:
        """Readable name per encoded column: `tenure_months`, `contract=one_year`."""
        one_hot = [f"{name}={category}" for name, values in self.categorical.items() for category in values]
        return (*self.numeric, *one_hot)

    @property
    def width(self) -> int:
        return len(self.numeric) + sum(len(values) for values in self.categorical.values())

    @property
    def num_outputs(self) -> int:
        return len(self.classes) if self.task == "classification" else 1

    def transform(self, df: pd.DataFrame) -> np.ndarray:
        """The signature's input matrix [rows, width], float32.

        Numeric: raw values, nulls replaced by the training median (not standardised:
        the model does that). Categorical: one-hot in in_set order; a null or a category
        outside in_set is all zeros, so an unseen value degrades the row, not the request.
        """
        out = np.zeros((len(df), self.width), dtype=np.float32)
        column = 0
        for name in self.numeric:
            values = _numeric(df[name], name)
            out[:, column] = np.where(np.isnan(values), self.medians[name], values)
            column += 1
        for name, categories in self.categorical.items():
            index = {category_key(c): i for i, c in enumerate(categories)}
            positions = np.array(
                [-1 if _is_null(v) else index.get(category_key(v), -1) for v in df[name].to_numpy()], dtype=np.int64
            )
            known = positions >= 0
            out[np.flatnonzero(known), column + positions[known]] = 1.0
            column += len(categories)
        return out

    def targets(self, df: pd.DataFrame) -> np.ndarray:
        """Class indices (int64, the order of `classes`) or float32 values for regression."""
        values = df[self.target]
        if self.task == "regression":
            return _numeric(values, self.target).astype(np.float32)
        keys = [None if _is_null(v) else category_key(v) for v in values.to_numpy()]
        unknown = sorted({k for k in keys if k not in self._class_index}, key=str)
        if unknown:
            message = (
                f"target '{self.target}' has values outside its classes {self.classes}: "
                f"{', '.join('null' if k is None else k for k in unknown[:5])}"
            )
            raise MlopsError([Problem(None, "data.target", message)])
        return np.array([self._class_index[k] for k in keys], dtype=np.int64)

    def standardisation(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and std per input column (0 and 1 for one-hot columns): the model's buffers."""
        mean = np.zeros(self.width, dtype=np.float32)
        std = np.ones(self.width, dtype=np.float32)
        for i, name in enumerate(self.numeric):
            mean[i] = self.means[name]
            std[i] = self.stds[name]
        return mean, std

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "features": list(self._order),
            "numeric": list(self.numeric),
            "categorical": {name: [_json_value(v) for v in values] for name, values in self.categorical.items()},
            "target": self.target,
            "task": self.task,
            "classes": None if self.classes is None else [_json_value(c) for c in self.classes],
            "medians": dict(self.medians),
            "means": dict(self.means),
            "stds": dict(self.stds),
            "target_mean": self.target_mean,
            "target_std": self.target_std,
        }

    @classmethod
    def from_dict(cls, payload: dict[str, Any]) -> FeaturePipeline:
        version = payload.get("format_version")
        if version not in (1, FORMAT_VERSION):  # 1: before raw-column models; no target scaling
            raise MlopsError(f"feature pipeline format_version {version!r} is not supported (expected {FORMAT_VERSION})")
        return cls(
            features=payload.get("features"),
            numeric=payload["numeric"],
            categorical=payload["categorical"],
            target=payload["target"],
            task=payload["task"],
            classes=payload["classes"],
            medians=payload["medians"],
            means=payload["means"],
            stds=payload["stds"],
            target_mean=payload.get("target_mean", 0.0),
            target_std=payload.get("target_std", 1.0),
        )

    def __repr__(self) -> str:
        return f"FeaturePipeline(width={self.width}, task={self.task!r}, classes={self.classes!r})"


def _categories(data, name: str, values: pd.Series) -> list[Any]:
    """A categorical feature's one-hot columns: the recipe's in_set, in its order, or else
    the distinct values of the training split, sorted (deterministic across runs)."""
    expectation = data.expectations.columns.get(name)
    if expectation is not None and expectation.in_set:
        return list(expectation.in_set)
    seen: dict[str, Any] = {}
    for value in values.dropna().to_numpy():
        seen.setdefault(category_key(value), _json_value(value))
    return sorted(seen.values(), key=_label_order)


def _numeric(series: pd.Series, name: str) -> np.ndarray:
    """A column as float64 with NaN for nulls; text in a numeric feature is an error, not a null."""
    try:
        return pd.to_numeric(series, errors="raise").to_numpy(dtype=np.float64, na_value=math.nan)
    except (TypeError, ValueError) as error:
        message = f"numeric feature '{name}' has a non-numeric value ({error}); list it in data.categorical?"
        raise MlopsError([Problem(None, "data.features", message)]) from None
