"""Drift detection on 1,000,000 rows x 20 columns, reference vs shifted current, in one run:
`mlops monitor`'s statistics (framework.runtime.monitor.drift.detect, with its defaults
and with method=evidently) vs evidently alone (its DataDriftPreset on all rows) vs a
plain numpy PSI loop (the seed's ConceptDriftDetector.calculate_psi per column).

Columns: 15 numeric features, 4 categorical ones and 1 prediction (a probability).
Shifted in current: f00 (+0.5 sd), f01 (sd x2), c0 (a category's share 40% -> 70%) and
the prediction. Goal: the monitor's decision in <= 10 s.

evidently alone on all rows is slow: it first runs on a fifth of the rows (at most
200,000); when the full run would take more than --evidently-cap seconds (linear
extrapolation), the full run is skipped and the extrapolated time is shown instead.

Run: `python bench/drift.py [--rows N] [--evidently-cap S]`.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from framework.runtime.monitor import psi as psi_module  # noqa: E402
from framework.runtime.monitor.drift import detect  # noqa: E402

NUMERIC = [f"f{i:02d}" for i in range(15)]
CATEGORICAL = [f"c{i}" for i in range(4)]
PREDICTION = ["p_positive"]
THRESHOLD = 0.2
CATEGORIES = np.array(["a", "b", "c", "d", "e"], dtype=object)
BASE_SHARES = [0.4, 0.25, 0.15, 0.12, 0.08]
SHIFTED_SHARES = [0.7, 0.12, 0.08, 0.06, 0.04]


def make_frame(rows: int, seed: int, shifted: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    data = {}
    for i, name in enumerate(NUMERIC):
        kind = i % 4
        if kind == 0:
            column = rng.normal(50, 10, rows)
        elif kind == 1:
            column = rng.lognormal(3, 0.6, rows)
        elif kind == 2:
            column = rng.uniform(0, 100, rows)
        else:
            column = rng.poisson(4, rows).astype(np.float64)
        if shifted and name == "f00":
            column = column + 5.0  # +0.5 sd
        if shifted and name == "f01":
            column = np.exp(3 + (np.log(column) - 3) * 2)  # log-sd x2
        data[name] = column
    for name in CATEGORICAL:
        shares = SHIFTED_SHARES if shifted and name == "c0" else BASE_SHARES
        data[name] = CATEGORIES[rng.choice(len(CATEGORIES), rows, p=shares)]
    data["p_positive"] = rng.beta(3, 2, rows) if shifted else rng.beta(2, 3, rows)
    return pd.DataFrame(data)


def seed_calculate_psi(expected, actual, bins=10):
    """The seed's ConceptDriftDetector.calculate_psi, verbatim."""
    breakpoints = np.percentile(expected, np.linspace(0, 100, bins + 1))
    expected_counts = np.histogram(expected, breakpoints)[0] / len(expected)
    actual_counts = np.histogram(actual, breakpoints)[0] / len(actual)
    expected_counts = np.clip(expected_counts, 1e-6, None)
    actual_counts = np.clip(actual_counts, 1e-6, None)
    return np.sum((actual_counts - expected_counts) * np.log(actual_counts / expected_counts))


def plain_numpy_psi(reference: pd.DataFrame, current: pd.DataFrame) -> list[str]:
    """The seed's PSI per numeric column; categorical ones by np.unique counts."""
    flagged = []
    for name in NUMERIC + PREDICTION:
        if seed_calculate_psi(reference[name].to_numpy(), current[name].to_numpy()) > THRESHOLD:
            flagged.append(name)
    for name in CATEGORICAL:
        ref_keys, ref_counts = np.unique(reference[name].to_numpy(), return_counts=True)
        cur_keys, cur_counts = np.unique(current[name].to_numpy(), return_counts=True)
        keys = np.union1d(ref_keys, cur_keys)
        expected = np.zeros(keys.size)
        actual = np.zeros(keys.size)
        expected[np.searchsorted(keys, ref_keys)] = ref_counts / ref_counts.sum()
        actual[np.searchsorted(keys, cur_keys)] = cur_counts / cur_counts.sum()
        expected, actual = np.clip(expected, 1e-6, None), np.clip(actual, 1e-6, None)
        if np.sum((actual - expected) * np.log(actual / expected)) > THRESHOLD:
            flagged.append(name)
    return flagged


def evidently_alone(reference: pd.DataFrame, current: pd.DataFrame) -> tuple[float, bool, list[str]]:
    """Evidently's DataDriftPreset, its defaults, all given rows; (seconds, dataset_drift, drifted)."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    from framework.runtime.monitor.evidently_check import _read

    start = time.perf_counter()
    definition = DataDefinition(numerical_columns=NUMERIC + PREDICTION, categorical_columns=CATEGORICAL)
    snapshot = Report([DataDriftPreset()], include_tests=True).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )
    seconds = time.perf_counter() - start
    columns, _count, share = _read(snapshot.dict())
    return seconds, bool(share >= 0.5), [c for c, v in columns.items() if v.drifted]


def psi_breakdown(reference: pd.DataFrame, current: pd.DataFrame) -> dict[str, float]:
    """Where the PSI phase's time goes, step by step (same work as detect's PSI phase)."""
    steps = dict.fromkeys(["to float + drop NaN", "quantile edges", "bin counts",
                           "mean/std", "categorical value_counts"], 0.0)
    for name in NUMERIC + PREDICTION:
        t0 = time.perf_counter()
        ref = psi_module.as_float_array(reference[name])
        cur = psi_module.as_float_array(current[name])
        t1 = time.perf_counter()
        edges = psi_module.quantile_edges(ref, 10)
        t2 = time.perf_counter()
        psi_module.psi_from_proportions(psi_module.bin_proportions(ref, edges), psi_module.bin_proportions(cur, edges))
        t3 = time.perf_counter()
        ref.mean(), ref.std(), cur.mean(), cur.std()
        t4 = time.perf_counter()
        steps["to float + drop NaN"] += t1 - t0
        steps["quantile edges"] += t2 - t1
        steps["bin counts"] += t3 - t2
        steps["mean/std"] += t4 - t3
    t0 = time.perf_counter()
    for name in CATEGORICAL:
        psi_module.category_counts(reference[name]), psi_module.category_counts(current[name])
    steps["categorical value_counts"] = time.perf_counter() - t0
    return steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows per frame (reference and current)")
    parser.add_argument("--evidently-cap", type=float, default=120.0,
                        help="skip evidently's full run when it would take longer (seconds, extrapolated)")
    args = parser.parse_args(argv)
    rows = args.rows
    columns = len(NUMERIC) + len(CATEGORICAL) + len(PREDICTION)

    t0 = time.perf_counter()
    reference = make_frame(rows, 1, shifted=False)
    current = make_frame(rows, 2, shifted=True)
    print(f"data: {rows:,} rows x {columns} columns per frame ({len(NUMERIC)} numeric, {len(CATEGORICAL)} "
          f"categorical, {len(PREDICTION)} prediction), made in {time.perf_counter() - t0:.1f} s; "
          "shifted: f00 +0.5 sd, f01 log-sd x2, c0 'a' 40% -> 70%, p_positive beta(2,3) -> beta(3,2)")
    kinds = {"numeric": NUMERIC, "categorical": CATEGORICAL, "prediction": PREDICTION}
    table = []

    # (c) the floor: plain numpy PSI
    start = time.perf_counter()
    flagged = plain_numpy_psi(reference, current)
    floor = time.perf_counter() - start
    table.append(("plain numpy PSI (seed's calculate_psi)", rows, floor, bool(flagged), flagged))

    # (a) the monitor with its defaults: method psi, no evidently, no HTML
    start = time.perf_counter()
    monitor = detect(reference, current, **kinds)
    monitor_seconds = time.perf_counter() - start
    table.append(("monitor: detect() defaults (psi)", rows, monitor_seconds, monitor.drifted,
                  monitor.drifted_columns))

    # evidently's import, once, apart (the CLI pays it only when evidently runs)
    from framework.runtime.monitor.evidently_check import import_evidently

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import_seconds = import_evidently()

        start = time.perf_counter()
        monitor_ev = detect(reference, current, method="evidently", **kinds)
        monitor_ev_seconds = time.perf_counter() - start
        table.append((f"monitor: detect(method=evidently), sample {monitor_ev.evaluated_rows[0]:,}",
                      rows, monitor_ev_seconds, monitor_ev.drifted, monitor_ev.drifted_columns))

        # (b) evidently alone: a fifth of the rows first, then all of them if affordable
        part = min(rows, max(rows // 5, 1), 200_000)
        part_seconds, part_drift, part_flagged = evidently_alone(reference.iloc[:part], current.iloc[:part])
        estimate = part_seconds * rows / part
        if part == rows:
            table.append(("evidently alone: DataDriftPreset", rows, part_seconds, part_drift, part_flagged))
        else:
            table.append(("evidently alone: DataDriftPreset", part, part_seconds, part_drift, part_flagged))
            if estimate <= args.evidently_cap:
                seconds, drift, flagged = evidently_alone(reference, current)
                table.append(("evidently alone: DataDriftPreset", rows, seconds, drift, flagged))
            else:
                table.append((f"evidently alone: DataDriftPreset (EXTRAPOLATED from {part:,} rows, "
                              f"> {args.evidently_cap:.0f} s cap)", rows, estimate, part_drift, part_flagged))

    print()
    header = f"{'variant':<62} {'rows':>10} {'seconds':>9} {'x numpy':>8}  decision  columns flagged"
    print(header)
    print("-" * len(header))
    for name, n, seconds, decision, flagged in table:
        print(f"{name:<62} {n:>10,} {seconds:>9.2f} {seconds / floor:>8.1f}  "
              f"{'DRIFT' if decision else 'no drift':<8}  {', '.join(flagged) or '-'}")
    print(f"(evidently's import, paid once by the first evidently run above and excluded: {import_seconds:.1f} s)")

    print("\nmonitor phase timings (s):")
    for label, result in (("defaults (psi)", monitor), ("method=evidently", monitor_ev)):
        phases = ", ".join(f"{k} {v:.2f}" for k, v in result.timings.items())
        print(f"  {label:<18} {phases}")
    print("\nwhere the PSI phase goes (s, same steps as detect, timed again):")
    for step, seconds in psi_breakdown(reference, current).items():
        print(f"  {step:<26} {seconds:6.2f}")
    print("\nmonitor's columns (defaults):")
    for c in monitor.columns:
        detail = c.top_change or (f"mean {c.reference_mean:.3g} -> {c.current_mean:.3g}, "
                                  f"std {c.reference_std:.3g} -> {c.current_std:.3g}")
        tag = " (prediction)" if c.prediction else ""
        print(f"  {c.column:<11} psi {c.psi:7.4f}  {c.band:<8} {detail}{tag}")
    ok = monitor_seconds <= 10.0
    print(f"\ngoal: monitor's decision <= 10 s: {monitor_seconds:.2f} s -> {'met' if ok else 'MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
