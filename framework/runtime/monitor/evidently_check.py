"""Evidently's data drift preset (0.7 API), run on samples and read back per column.

evidently is imported inside ``run`` only (its import alone takes seconds). The preset
runs over the feature columns (its ``DriftedColumnsCount`` gives the dataset-level
decision, drift share 0.5); prediction columns get their own ``ValueDrift`` metric so
they do not count towards the feature share.

Evidently picks the test per column from the reference's size: up to 1,000 non-null
reference values a p-value test (``ks``, ``chisquare``, ``z``; drift when p < 0.05),
above that a distance (``wasserstein`` normed, ``jensenshannon``; drift when the
distance >= threshold). Our threshold ("score above which a feature drifts") is passed
to the distance tests only; the p-value tests keep evidently's 0.05.
"""

from __future__ import annotations

import importlib
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd


@dataclass
class EvidentlyColumn:
    score: float
    test: str
    drifted: bool
    threshold: float | None


@dataclass
class EvidentlyOutcome:
    columns: dict[str, EvidentlyColumn]
    summary: dict
    html: str | None
    timings: dict[str, float] = field(default_factory=dict)


# display name -> registered name, for the tests evidently may pick automatically
_KNOWN_TESTS = {
    "K-S p_value": "ks",
    "chi-square p_value": "chisquare",
    "Z-test p_value": "z",
    "Wasserstein distance (normed)": "wasserstein",
    "Jensen-Shannon distance": "jensenshannon",
    "PSI": "psi",
}
_P_VALUE_TESTS = {"ks", "chisquare", "z", "t_test", "fisher_exact", "mannw", "anderson", "cramer_von_mises",
                  "g_test", "es"}
DISTANCE_TEST_MIN_REFERENCE = 1000  # evidently: more non-null reference values than this -> distance tests


def _test_names() -> dict[str, str]:
    names = dict(_KNOWN_TESTS)
    try:
        from evidently.legacy.calculations import stattests
        from evidently.legacy.calculations.stattests.registry import StatTest

        for value in vars(stattests).values():
            if isinstance(value, StatTest):
                names.setdefault(value.display_name, value.name)
    except Exception:  # noqa: BLE001 - the known names suffice
        pass
    return names


def import_evidently() -> float:
    """Import evidently (quietly); the seconds it took (0 when already imported)."""
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        importlib.import_module("evidently.presets")
    return time.perf_counter() - start


def _non_null(series: pd.Series) -> int:
    if pd.api.types.is_numeric_dtype(series):
        return int(np.isfinite(series.to_numpy(dtype=np.float64, na_value=np.nan)).sum())
    return int(series.notna().sum())


def _prepare(frame: pd.DataFrame, numeric: list[str], categorical: list[str]) -> pd.DataFrame:
    """Numeric columns as float64, categorical ones as strings (missing kept missing)."""
    data = {}
    for name in numeric:
        data[name] = pd.to_numeric(frame[name], errors="coerce").astype(np.float64)
    for name in categorical:
        column = frame[name]
        data[name] = column.astype(object).where(column.isna(), column.astype(str))
    return pd.DataFrame(data, index=frame.index).reset_index(drop=True)


def run(reference: pd.DataFrame, current: pd.DataFrame, *, numeric: list[str], categorical: list[str],
        prediction: list[str], threshold: float | None, html: bool) -> EvidentlyOutcome:
    """Run the preset on (already sampled) frames. ``threshold`` None: evidently's own thresholds.

    Columns empty on either side (after dropping missing values) are left out: evidently
    refuses them.
    """
    timings = {"evidently_import": import_evidently()}
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from evidently import DataDefinition, Dataset, Report
        from evidently.metrics import ValueDrift
        from evidently.presets import DataDriftPreset

        numeric_all = [*numeric, *prediction]
        ref = _prepare(reference, numeric_all, categorical)
        cur = _prepare(current, numeric_all, categorical)
        usable = {name for name in [*numeric_all, *categorical]
                  if _non_null(ref[name]) > 0 and _non_null(cur[name]) > 0}
        features = [c for c in [*numeric, *categorical] if c in usable]
        predictions = [c for c in prediction if c in usable]

        def column_threshold(name: str) -> float | None:
            if threshold is None or _non_null(ref[name]) <= DISTANCE_TEST_MIN_REFERENCE:
                return None
            return float(threshold)

        per_column = {c: t for c in features if (t := column_threshold(c)) is not None}
        metrics = []
        if features:
            metrics.append(DataDriftPreset(columns=features, per_column_threshold=per_column or None))
        metrics += [ValueDrift(column=c, threshold=column_threshold(c)) for c in predictions]
        outcome = EvidentlyOutcome(columns={}, summary={}, html=None, timings=timings)
        if not metrics:
            timings["evidently"] = time.perf_counter() - start
            timings["html"] = 0.0
            outcome.summary = _summary(0, 0, 0.0, 0.5, per_column)
            return outcome
        used = [*features, *predictions]
        definition = DataDefinition(numerical_columns=[c for c in numeric_all if c in usable],
                                    categorical_columns=[c for c in categorical if c in usable])
        snapshot = Report(metrics, include_tests=True).run(
            Dataset.from_pandas(cur[used], data_definition=definition),
            Dataset.from_pandas(ref[used], data_definition=definition),
        )
        timings["evidently"] = time.perf_counter() - start
        outcome.columns, count, share = _read(snapshot.dict())
        feature_drifted = sum(outcome.columns[c].drifted for c in features if c in outcome.columns)
        if count is None:
            count = feature_drifted
            share = feature_drifted / len(features) if features else 0.0
        outcome.summary = _summary(len(features), int(count), float(share), 0.5, per_column)
        start = time.perf_counter()
        if html:
            outcome.html = snapshot.get_html_str(as_iframe=False)
        timings["html"] = time.perf_counter() - start
    return outcome


def _summary(columns: int, drifted: int, share: float, drift_share: float, thresholds: dict) -> dict:
    return {
        "number_of_columns": columns,
        "number_of_drifted_columns": drifted,
        "share_of_drifted_columns": share,
        "dataset_drift": bool(columns > 0 and share >= drift_share),
        "drift_share": drift_share,
        "stattest_threshold": next(iter(thresholds.values()), None),
    }


def _read(snapshot: dict) -> tuple[dict[str, EvidentlyColumn], float | None, float | None]:
    """Per-column drift (score, test, verdict) and the preset's drifted count and share."""
    names = _test_names()
    status = {}
    for test in snapshot.get("tests", []):
        metric_id = (test.get("metric_config") or {}).get("metric_id")
        if test.get("id") == "drift" and metric_id:
            status[metric_id] = test.get("status")
    columns: dict[str, EvidentlyColumn] = {}
    count = share = None
    for metric in snapshot.get("metrics", []):
        config = metric.get("config") or {}
        kind = config.get("type", "")
        if kind.endswith(":DriftedColumnsCount"):
            value = metric.get("value") or {}
            count, share = value.get("count"), value.get("share")
        elif kind.endswith(":ValueDrift"):
            display = str(config.get("method") or "")
            test = names.get(display, display)
            score = float(metric.get("value"))
            limit = config.get("threshold")
            verdict = status.get(metric.get("id"))
            if verdict is not None:
                drifted = verdict == "FAIL"
            elif test in _P_VALUE_TESTS or "p_value" in display:
                drifted = score < (limit if limit is not None else 0.05)
            else:
                drifted = score >= (limit if limit is not None else 0.1)
            columns[config["column"]] = EvidentlyColumn(score, test, bool(drifted),
                                                        None if limit is None else float(limit))
    return columns, count, share
