"""The statistics of `mlops monitor`: PSI (seed's formula and bands) and evidently's preset."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from framework.runtime.monitor.drift import ColumnDrift, DriftResult, band, detect, psi, psi_categorical

PLANS = ["monthly", "yearly", "two_year"]


def seed_psi(expected, actual, bins=10):
    """The seed's ConceptDriftDetector.calculate_psi, verbatim."""
    breakpoints = np.percentile(expected, np.linspace(0, 100, bins + 1))
    expected_counts = np.histogram(expected, breakpoints)[0] / len(expected)
    actual_counts = np.histogram(actual, breakpoints)[0] / len(actual)
    expected_counts = np.clip(expected_counts, 1e-6, None)
    actual_counts = np.clip(actual_counts, 1e-6, None)
    return np.sum((actual_counts - expected_counts) * np.log(actual_counts / expected_counts))


def frame(rng, n, *, shift=0.0, scale=1.0, plan_p=(0.55, 0.3, 0.15), prob=(2.0, 5.0)):
    """5 columns: 3 numeric features, a categorical one, and a prediction (a probability)."""
    return pd.DataFrame({
        "tenure": rng.normal(24 + shift * 10, 10 * scale, n),
        "charges": rng.lognormal(4, 0.5, n),
        "calls": rng.poisson(3, n).astype(float),
        "plan": rng.choice(PLANS, n, p=list(plan_p)),
        "p_churn": rng.beta(*prob, n),
    })


COLUMNS = {"numeric": ["tenure", "charges", "calls"], "categorical": ["plan"], "prediction": ["p_churn"]}


# --- psi: the seed's formula, edges, bands ----------------------------------------------------

def test_psi_hand_computed():
    # reference 0..9, two bins split at 4.5: shares 0.5/0.5; current 8 low, 2 high: 0.8/0.2
    reference = np.arange(10.0)
    current = np.array([0, 1, 2, 3, 4, 0, 1, 2, 9, 9], dtype=float)
    expected = 0.3 * math.log(0.8 / 0.5) + (-0.3) * math.log(0.2 / 0.5)
    assert psi(reference, current, bins=2) == pytest.approx(expected, abs=1e-12)
    assert expected == pytest.approx(0.415888, abs=1e-6)


def test_psi_equals_the_seed_inside_the_reference_range():
    rng = np.random.default_rng(7)
    reference = rng.normal(0, 1, 5000)
    current = np.clip(rng.normal(0.3, 1.2, 4000), reference.min(), reference.max())
    assert psi(reference, current) == pytest.approx(seed_psi(reference, current), rel=1e-9)


def test_psi_counts_values_outside_the_reference_range():
    reference = np.linspace(0, 1, 1000)
    # the seed drops these (np.histogram's closed range) and sees almost no drift
    current = np.concatenate([np.linspace(0, 1, 500), np.full(500, 5.0)])
    assert psi(reference, current) > 1.0
    assert psi(reference, np.full(100, -3.0)) > 5.0


def test_psi_constant_and_tied_columns():
    assert psi(np.zeros(1000), np.zeros(500)) == 0.0
    assert psi(np.ones(1000), np.r_[np.ones(500), np.zeros(500)]) > 1.0  # half below the constant
    ties = np.repeat([1.0, 2.0, 3.0], [700, 200, 100])  # most quantile edges coincide
    assert psi(ties, ties[::-1].copy()) == pytest.approx(0.0, abs=1e-12)
    assert psi(ties, np.repeat([1.0, 2.0, 3.0], [300, 300, 400])) > 0.2


def test_psi_drops_missing_values():
    rng = np.random.default_rng(3)
    reference = rng.normal(size=2000)
    with_nans = np.where(rng.random(2000) < 0.3, np.nan, reference)
    assert psi(with_nans, reference) < 0.02
    assert psi(pd.Series(with_nans), pd.Series(reference).astype("Float64")) < 0.02
    assert psi(np.full(10, np.nan), reference) == 0.0  # nothing to compare with
    assert psi(np.array([1.0, np.inf, 2.0, -np.inf, 3.0]), np.array([1.0, 2.0, 3.0])) == pytest.approx(0.0, abs=1e-9)


def test_psi_categorical():
    reference = ["a"] * 50 + ["b"] * 50
    current = ["a"] * 80 + ["b"] * 20
    assert psi_categorical(reference, current) == pytest.approx(0.3 * math.log(1.6) - 0.3 * math.log(0.4))
    # a category new in current, missing values as their own category
    assert psi_categorical(["a", "b"] * 50, ["a", "b"] * 45 + ["c"] * 10) > 0.3
    assert psi_categorical(["a", None] * 50, pd.Series(["a", np.nan] * 50)) == pytest.approx(0.0)
    assert psi_categorical(["a"] * 100, ["a"] * 50 + [None] * 50) > 1.0
    assert psi_categorical(pd.Series(["x", "y"] * 10, dtype="category"), ["x", "y"] * 7) == pytest.approx(0.0)


def test_bands_are_the_seeds():
    assert band(0.05, 0.2) == "none"
    assert band(0.1, 0.2) == "none"
    assert band(0.15, 0.2) == "monitor"
    assert band(0.2, 0.2) == "monitor"
    assert band(0.21, 0.2) == "retrain"
    assert band(float("nan"), 0.2) == "none"


# --- detect with psi ---------------------------------------------------------------------------

def test_psi_no_false_alarms_on_the_same_distribution():
    alarms = monitors = 0
    for seed in range(200):
        rng = np.random.default_rng(seed)
        result = detect(frame(rng, 2000), frame(rng, 2000), **COLUMNS)
        alarms += len(result.drifted_columns)
        monitors += sum(c.band != "none" for c in result.columns)
        assert result.overall < 0.2
    assert alarms == 0  # of 1,000 column checks
    assert monitors == 0


@pytest.mark.parametrize("change, column", [
    ({"shift": 0.5}, "tenure"),  # +0.5 sd
    ({"scale": 2.0}, "tenure"),  # sd x2
    ({"plan_p": (0.85, 0.1, 0.05)}, "plan"),  # monthly 55% -> 85%
    ({"prob": (5.0, 2.0)}, "p_churn"),  # the prediction distribution
])
def test_psi_detects(change, column):
    rng = np.random.default_rng(11)
    result = detect(frame(rng, 10_000), frame(rng, 10_000, **change), **COLUMNS)
    by_name = {c.column: c for c in result.columns}
    assert by_name[column].drifted and by_name[column].band == "retrain"
    assert result.drifted and result.band == "retrain"
    assert result.overall == max(c.psi for c in result.columns)
    assert all(not c.drifted for c in result.columns if c.column != column)
    assert result.prediction_drifted == (column == "p_churn")
    assert by_name["p_churn"].prediction and by_name["p_churn"].kind == "numeric"
    assert [c.column for c in result.columns] == ["tenure", "charges", "calls", "plan", "p_churn"]
    assert result.evidently_summary is None and result.html is None
    assert all(c.evidently_score is None for c in result.columns)


def test_column_details():
    rng = np.random.default_rng(5)
    result = detect(frame(rng, 5000), frame(rng, 5000, shift=0.5, plan_p=(0.85, 0.1, 0.05)), **COLUMNS)
    tenure, plan = result.columns[0], result.columns[3]
    assert tenure.reference_mean == pytest.approx(24, abs=0.5) and tenure.current_mean == pytest.approx(29, abs=0.5)
    assert tenure.reference_std == pytest.approx(10, abs=0.5) and tenure.top_change is None
    assert plan.kind == "categorical" and plan.reference_mean is None
    name, shares = plan.top_change.split(" ", 1)
    before, after = (float(s.rstrip("%")) for s in shares.split(" -> "))
    assert name == "monthly" and before == pytest.approx(55, abs=2) and after == pytest.approx(85, abs=2)
    assert result.evaluated_rows == (5000, 5000) and result.timings["psi"] > 0


def test_nan_constant_and_out_of_range_columns():
    rng = np.random.default_rng(2)
    n = 3000
    reference = pd.DataFrame({
        "holes": np.where(rng.random(n) < 0.2, np.nan, rng.normal(size=n)),
        "constant": np.ones(n),
        "empty": np.full(n, np.nan),
        "range": rng.uniform(0, 1, n),
        "ints": pd.array(rng.integers(0, 5, n), dtype="Int64"),
        "plan": pd.Series(rng.choice(PLANS + [None], n)),
    })
    current = pd.DataFrame({
        "holes": np.where(rng.random(n) < 0.6, np.nan, rng.normal(size=n)),
        "constant": np.ones(n),
        "empty": rng.normal(size=n),
        "range": rng.uniform(2, 3, n),  # entirely above the reference
        "ints": pd.array(np.where(rng.random(n) < 0.1, None, rng.integers(0, 5, n)), dtype="Int64"),
        "plan": pd.Series(rng.choice(PLANS + [None], n)),
    })
    kinds = {"numeric": ["holes", "constant", "empty", "range", "ints"], "categorical": ["plan"]}
    for method in ("psi", "evidently"):
        result = detect(reference, current, method=method, **kinds)
        by_name = {c.column: c for c in result.columns}
        assert not by_name["holes"].drifted and by_name["holes"].current_null_share == pytest.approx(0.6, abs=0.03)
        assert by_name["constant"].psi == 0.0 and not by_name["constant"].drifted
        assert by_name["empty"].psi == 0.0 and by_name["empty"].reference_mean is None
        assert by_name["range"].drifted and by_name["range"].psi > 5
        assert not by_name["ints"].drifted and not by_name["plan"].drifted
        assert json.loads(json.dumps(result.to_json(), allow_nan=False))
    assert by_name["empty"].evidently_score is None  # evidently refuses empty columns: left out
    assert by_name["range"].evidently_test == "wasserstein"


def test_missing_or_repeated_columns_and_bad_arguments():
    rng = np.random.default_rng(0)
    data = frame(rng, 100)
    with pytest.raises(ValueError, match="reference data lacks the columns: nope"):
        detect(data, data, numeric=["tenure", "nope"], categorical=[])
    with pytest.raises(ValueError, match="current data lacks the columns: nope"):
        detect(data.assign(nope=1), data, numeric=["tenure"], categorical=["nope"])
    with pytest.raises(ValueError, match="more than once"):
        detect(data, data, numeric=["tenure"], categorical=[], prediction=["tenure"])
    with pytest.raises(ValueError, match="method"):
        detect(data, data, numeric=["tenure"], categorical=[], method="ks")
    with pytest.raises(ValueError, match="needs evidently"):
        detect(data, data, numeric=["tenure"], categorical=[], method="evidently", evidently=False)


def test_to_json_is_json_safe():
    rng = np.random.default_rng(4)
    reference = frame(rng, 500)
    current = frame(rng, 500).assign(tenure=np.nan)
    result = detect(reference, current, **COLUMNS)
    data = result.to_json()
    text = json.dumps(data, allow_nan=False)
    assert "NaN" not in text and data["columns"][0]["current_mean"] is None
    assert data["evaluated_rows"] == [500, 500] and data["has_html"] is False
    assert isinstance(result, DriftResult) and isinstance(result.columns[0], ColumnDrift)


def test_detect_on_many_rows_finds_no_drift_between_samples_of_one_distribution():
    rng = np.random.default_rng(0)
    n = 200_000
    reference = pd.DataFrame({f"x{i}": rng.normal(size=n) for i in range(8)} | {"c": rng.choice(PLANS, n)})
    current = pd.DataFrame({f"x{i}": rng.normal(size=n) for i in range(8)} | {"c": rng.choice(PLANS, n)})
    result = detect(reference, current, numeric=[f"x{i}" for i in range(8)], categorical=["c"])
    assert not result.drifted and result.evaluated_rows == (n, n)  # its speed: bench/drift.py


# --- evidently ---------------------------------------------------------------------------------

def test_evidently_no_false_alarms_on_the_same_distribution():
    alarms = 0
    for seed in range(15):
        rng = np.random.default_rng(1000 + seed)
        result = detect(frame(rng, 2000), frame(rng, 2000), method="evidently", **COLUMNS)
        alarms += sum(bool(c.evidently_drifted) for c in result.columns)
        assert not result.drifted and result.overall == 0.0
        assert result.evidently_summary["dataset_drift"] is False
    assert alarms == 0


@pytest.mark.parametrize("change, column, test", [
    ({"shift": 0.5}, "tenure", "wasserstein"),
    ({"scale": 2.0}, "tenure", "wasserstein"),
    ({"plan_p": (0.85, 0.1, 0.05)}, "plan", "jensenshannon"),
    ({"prob": (5.0, 2.0)}, "p_churn", "wasserstein"),
])
def test_evidently_detects(change, column, test):
    rng = np.random.default_rng(12)
    result = detect(frame(rng, 5000), frame(rng, 5000, **change), method="evidently", **COLUMNS)
    by_name = {c.column: c for c in result.columns}
    drifted = by_name[column]
    assert drifted.evidently_test == test and drifted.evidently_drifted and drifted.drifted
    assert drifted.score == drifted.evidently_score > 0.2
    assert drifted.band == "retrain"  # PSI's band is reported with either method
    summary = result.evidently_summary
    assert summary["number_of_columns"] == 4  # the features; the prediction is apart
    assert summary["stattest_threshold"] == 0.2
    assert result.overall == summary["share_of_drifted_columns"]
    # one feature of four drifted: below evidently's drift share (0.5); the prediction alone decides
    assert summary["dataset_drift"] is False
    assert result.drifted == (column == "p_churn")


def test_evidently_dataset_drift_and_sampling():
    rng = np.random.default_rng(13)
    reference = frame(rng, 30_000)
    current = frame(rng, 20_000, shift=0.5, plan_p=(0.85, 0.1, 0.05))
    result = detect(reference, current, method="evidently", sample_rows=4000, seed=1, **COLUMNS)
    assert result.evaluated_rows == (4000, 4000)
    assert (result.reference_rows, result.current_rows) == (30_000, 20_000)
    assert result.evidently_summary["dataset_drift"] is True and result.drifted
    assert result.overall >= 0.5
    again = detect(reference, current, method="evidently", sample_rows=4000, seed=1, **COLUMNS)
    assert [c.evidently_score for c in again.columns] == [c.evidently_score for c in result.columns]


def test_evidently_small_samples_keep_its_p_value_tests():
    rng = np.random.default_rng(14)
    result = detect(frame(rng, 600), frame(rng, 600, shift=1.0), method="evidently", **COLUMNS)
    tenure = result.columns[0]
    assert tenure.evidently_test == "ks" and tenure.drifted and tenure.score < 0.05
    assert result.evidently_summary["stattest_threshold"] is None


def test_html_when_asked():
    rng = np.random.default_rng(15)
    result = detect(frame(rng, 2000), frame(rng, 2000, shift=0.5), html=True, **COLUMNS)
    assert result.method == "psi" and result.html and "<html" in result.html.lower()
    assert result.timings["html"] > 0 and result.timings["evidently"] > 0
    # evidently ran with its own thresholds; the decision is PSI's
    assert result.evidently_summary["stattest_threshold"] is None
    assert result.columns[0].score == result.columns[0].psi and result.columns[0].evidently_score is not None
    assert result.to_json()["has_html"] is True
    assert detect(frame(rng, 500), frame(rng, 500), evidently=True, **COLUMNS).html is None
