"""Drift of served traffic against the training reference: the statistics of `mlops monitor`.

Two methods (recipe ``monitoring.drift.method``):

* ``psi`` (default): PSI per column over quantile bins of the reference (numeric) or over
  the union of categories (categorical), on all rows, vectorised (see ``psi.py``).
  A column drifts when its PSI > threshold; the dataset drifts when any column does.
* ``evidently``: evidently's data drift preset on a seeded sample of at most
  ``sample_rows`` rows per frame; per-column verdicts are evidently's (our threshold is
  its stattest threshold), the dataset decision is evidently's ``dataset_drift``
  (drift share 0.5 of the feature columns) or a drifted prediction column.

PSI and its band (none / monitor / retrain, the seed's ConceptDriftDetector) are
computed for every column with either method. Prediction columns (model outputs, e.g.
a class probability) are compared like numeric features and reported as prediction
drift. Only numpy and pandas are imported here; evidently is imported when it runs.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from framework.runtime.monitor.psi import (
    BANDS,
    as_float_array,
    band,
    bin_proportions,
    category_counts,
    category_shares,
    psi,
    psi_categorical,
    psi_from_proportions,
    quantile_edges,
    top_change,
)

__all__ = ["ColumnDrift", "DriftResult", "band", "detect", "psi", "psi_categorical"]

METHODS = ("psi", "evidently")


@dataclass
class ColumnDrift:
    column: str
    kind: str  # "numeric" | "categorical"
    psi: float
    band: str  # "none" | "monitor" | "retrain": PSI against the threshold (seed's bands)
    evidently_score: float | None = None
    evidently_test: str | None = None
    evidently_drifted: bool | None = None
    score: float = 0.0  # the recipe method's score: psi, or evidently_score
    drifted: bool = False
    reference_mean: float | None = None
    current_mean: float | None = None
    reference_std: float | None = None
    current_std: float | None = None
    top_change: str | None = None  # categorical: "monthly 55.0% -> 80.1%"
    prediction: bool = False  # a model output column (prediction drift)
    reference_null_share: float = 0.0  # missing values (NaN/None/inf) share: PSI ignores them
    current_null_share: float = 0.0

    def to_json(self) -> dict:
        data = asdict(self)
        for key in ("psi", "evidently_score", "score"):
            data[key] = _round(data[key], 6)
        for key in ("reference_mean", "current_mean", "reference_std", "current_std"):
            data[key] = _significant(data[key])
        for key in ("reference_null_share", "current_null_share"):
            data[key] = _round(data[key], 6)
        return data


@dataclass
class DriftResult:
    method: str
    threshold: float
    columns: list[ColumnDrift]  # features in the order given, then prediction columns
    overall: float  # psi: max column score; evidently: share of drifted feature columns
    drifted: bool
    band: str  # worst PSI band over the columns
    reference_rows: int
    current_rows: int
    evaluated_rows: tuple[int, int]  # rows evidently saw (after sampling); all rows for psi alone
    timings: dict[str, float] = field(default_factory=dict)
    html: str | None = None
    evidently_summary: dict | None = None

    @property
    def drifted_columns(self) -> list[str]:
        return [c.column for c in self.columns if c.drifted]

    @property
    def prediction_drifted(self) -> bool:
        return any(c.drifted for c in self.columns if c.prediction)

    def to_json(self) -> dict:
        """JSON-safe (no NaN/inf); the HTML itself is left out (``has_html`` says whether there is one)."""
        summary = None
        if self.evidently_summary is not None:
            summary = {k: (_round(v, 6) if isinstance(v, float) else v) for k, v in self.evidently_summary.items()}
        return {
            "method": self.method,
            "threshold": _round(self.threshold, 6),
            "drifted": bool(self.drifted),
            "band": self.band,
            "overall": _round(self.overall, 6),
            "drifted_columns": self.drifted_columns,
            "prediction_drifted": self.prediction_drifted,
            "reference_rows": int(self.reference_rows),
            "current_rows": int(self.current_rows),
            "evaluated_rows": [int(n) for n in self.evaluated_rows],
            "timings": {k: _round(v, 4) for k, v in self.timings.items()},
            "evidently_summary": summary,
            "has_html": self.html is not None,
            "columns": [c.to_json() for c in self.columns],
        }


def _finite(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _round(value, digits: int) -> float | None:
    value = _finite(value)
    return None if value is None else round(value, digits)


def _significant(value, digits: int = 6) -> float | None:
    value = _finite(value)
    return None if value is None else float(f"{value:.{digits}g}")


def _null_share(column: pd.Series, kept: int) -> float:
    return 1.0 - kept / len(column) if len(column) else 0.0


def _numeric_drift(name: str, reference: pd.Series, current: pd.Series, bins: int, threshold: float,
                   prediction: bool) -> ColumnDrift:
    ref, cur = as_float_array(reference), as_float_array(current)
    value = 0.0
    if ref.size and cur.size:
        edges = quantile_edges(ref, bins)
        value = psi_from_proportions(bin_proportions(ref, edges), bin_proportions(cur, edges))
    return ColumnDrift(
        column=name, kind="numeric", psi=value, band=band(value, threshold), score=value,
        drifted=value > threshold, prediction=prediction,
        reference_mean=float(ref.mean()) if ref.size else None,
        current_mean=float(cur.mean()) if cur.size else None,
        reference_std=float(ref.std()) if ref.size else None,
        current_std=float(cur.std()) if cur.size else None,
        reference_null_share=_null_share(reference, ref.size),
        current_null_share=_null_share(current, cur.size),
    )


def _categorical_drift(name: str, reference: pd.Series, current: pd.Series, threshold: float) -> ColumnDrift:
    ref_counts, cur_counts = category_counts(reference), category_counts(current)
    value, change = 0.0, None
    if ref_counts and cur_counts:
        categories, expected, actual = category_shares(ref_counts, cur_counts)
        value = psi_from_proportions(expected, actual)
        change = top_change(categories, expected, actual)
    return ColumnDrift(
        column=name, kind="categorical", psi=value, band=band(value, threshold), score=value,
        drifted=value > threshold, top_change=change,
        reference_null_share=_null_share(reference, len(reference) - int(reference.isna().sum())),
        current_null_share=_null_share(current, len(current) - int(current.isna().sum())),
    )


def sample(frame: pd.DataFrame, rows: int, rng: np.random.Generator) -> pd.DataFrame:
    """At most ``rows`` rows, drawn without replacement, in their original order."""
    if len(frame) <= rows:
        return frame
    return frame.iloc[np.sort(rng.choice(len(frame), size=rows, replace=False))]


def _check_columns(reference: pd.DataFrame, current: pd.DataFrame, names: list[str]) -> None:
    seen: set[str] = set()
    duplicates = [n for n in names if n in seen or seen.add(n)]
    if duplicates:
        raise ValueError(f"columns listed more than once: {', '.join(duplicates)}")
    for label, frame in (("reference", reference), ("current", current)):
        missing = [n for n in names if n not in frame.columns]
        if missing:
            raise ValueError(f"{label} data lacks the columns: {', '.join(missing)}")


def detect(reference: pd.DataFrame, current: pd.DataFrame, *, numeric: list[str], categorical: list[str],
           prediction: list[str] = (), method: str = "psi", threshold: float = 0.2, bins: int = 10,
           evidently: bool | None = None, html: bool = False, sample_rows: int = 50_000,
           seed: int = 0) -> DriftResult:
    """Compare ``current`` (served traffic) with ``reference`` (training data), column by column.

    ``evidently`` None runs evidently when the method is ``evidently`` or ``html`` is asked for.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if not threshold > 0:
        raise ValueError(f"threshold must be > 0, got {threshold}")
    numeric, categorical, prediction = list(numeric), list(categorical), list(prediction)
    _check_columns(reference, current, [*numeric, *categorical, *prediction])
    run_evidently = (method == "evidently" or html) if evidently is None else bool(evidently)
    if method == "evidently" and not run_evidently:
        raise ValueError("method 'evidently' needs evidently=True (or None)")

    timings = {"psi": 0.0, "evidently": 0.0, "html": 0.0}
    start = time.perf_counter()
    columns = [_numeric_drift(n, reference[n], current[n], bins, threshold, False) for n in numeric]
    columns += [_categorical_drift(n, reference[n], current[n], threshold) for n in categorical]
    columns += [_numeric_drift(n, reference[n], current[n], bins, threshold, True) for n in prediction]
    timings["psi"] = time.perf_counter() - start

    evaluated = (len(reference), len(current))
    summary = None
    report_html = None
    if run_evidently:
        from framework.runtime.monitor import evidently_check

        start = time.perf_counter()
        rng = np.random.default_rng(seed)
        ref_sample = sample(reference, sample_rows, rng)
        cur_sample = sample(current, sample_rows, rng)
        evaluated = (len(ref_sample), len(cur_sample))
        timings["sample"] = time.perf_counter() - start
        outcome = evidently_check.run(
            ref_sample, cur_sample, numeric=numeric, categorical=categorical, prediction=prediction,
            threshold=threshold if method == "evidently" else None, html=html)
        timings.update(outcome.timings)
        summary, report_html = outcome.summary, outcome.html
        for column in columns:
            found = outcome.columns.get(column.column)
            if found is not None:
                column.evidently_score = found.score
                column.evidently_test = found.test
                column.evidently_drifted = found.drifted
                if method == "evidently":
                    column.score, column.drifted = found.score, found.drifted

    worst = max((BANDS.index(c.band) for c in columns), default=0)
    if method == "psi":
        overall = max((c.score for c in columns), default=0.0)
        drifted = any(c.drifted for c in columns)
    else:
        overall = float(summary["share_of_drifted_columns"])
        drifted = bool(summary["dataset_drift"]) or any(c.drifted for c in columns if c.prediction)
    return DriftResult(
        method=method, threshold=float(threshold), columns=columns, overall=float(overall),
        drifted=bool(drifted), band=BANDS[worst], reference_rows=len(reference), current_rows=len(current),
        evaluated_rows=evaluated, timings=timings, html=report_html, evidently_summary=summary,
    )
