"""Build the Feast feature data of the `churn_features` recipe from data/churn.csv.

Writes
  feature_repo/data/customer_features.parquet  the feature view's source: one row per
      customer per snapshot, keyed by `customer_id` and stamped by `event_timestamp`
  data/churn_labels.csv  the label table: customer_id, event_timestamp (when churn was
      observed), churned, gender (kept for the fairness gate)

Each customer has three snapshots, so a join that is not point-in-time correct trains on
the wrong rows:
  2026-01-01  an older state (shorter tenure, other charges, fewer calls)
  2026-03-01  the state in data/churn.csv
  2026-06-01  a later state, after the label was observed: it must never be joined
The labels are observed on 2026-04-01, so the point-in-time join picks exactly the rows
of data/churn.csv, and the model trains on the same table as the `churn` recipe.

Run `python data/make_churn_features.py` to rebuild the committed files.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "data" / "churn.csv"
FEATURES_FILE = ROOT / "feature_repo" / "data" / "customer_features.parquet"
LABELS_FILE = ROOT / "data" / "churn_labels.csv"
ENTITY = "customer_id"
FEATURES = ["tenure_months", "monthly_charges", "total_charges", "support_calls", "num_products",
            "senior_citizen", "contract", "payment_method"]
OBSERVED = pd.Timestamp("2026-04-01", tz="UTC")
SNAPSHOTS = {"before": pd.Timestamp("2026-01-01", tz="UTC"), "current": pd.Timestamp("2026-03-01", tz="UTC"),
             "after": pd.Timestamp("2026-06-01", tz="UTC")}
SEED = 20261205


def snapshots(current: pd.DataFrame, seed: int = SEED) -> pd.DataFrame:
    """The three snapshots of every customer; `current` is data/churn.csv's rows."""
    rng = np.random.default_rng(seed)
    rows = len(current)
    before = current.copy()
    before["tenure_months"] = (current["tenure_months"] - 2).clip(lower=0)
    before["monthly_charges"] = (current["monthly_charges"] * rng.uniform(0.7, 1.3, rows)).round(2)
    before["total_charges"] = (current["total_charges"] * 0.9).round(2)
    before["support_calls"] = rng.poisson(0.5, rows)
    after = current.copy()
    after["tenure_months"] = (current["tenure_months"] + 3).clip(upper=120)
    after["monthly_charges"] = (current["monthly_charges"] + 40).round(2)
    after["support_calls"] = current["support_calls"] + 5
    after["contract"] = "two_year"
    frames = []
    for name, frame in (("before", before), ("current", current), ("after", after)):
        frame = frame[[ENTITY, *FEATURES]].copy()
        frame["event_timestamp"] = SNAPSHOTS[name]
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    table["created"] = table["event_timestamp"]
    # int64 for counts, float64 for money, strings for categories: the view's schema
    for column in ("tenure_months", "support_calls", "num_products", "senior_citizen"):
        table[column] = table[column].astype("int64")
    return table


def labels(current: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({ENTITY: current[ENTITY], "event_timestamp": OBSERVED.isoformat(),
                         "churned": current["churned"], "gender": current["gender"]})


def main(argv: list[str]) -> int:
    current = pd.read_csv(SOURCE)
    FEATURES_FILE.parent.mkdir(parents=True, exist_ok=True)
    snapshots(current).to_parquet(FEATURES_FILE, index=False)
    labels(current).to_csv(LABELS_FILE, index=False)
    print(f"wrote {FEATURES_FILE.relative_to(ROOT)} ({len(current) * 3} rows) and {LABELS_FILE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
