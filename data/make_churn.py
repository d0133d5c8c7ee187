"""Generate data/churn.csv: a synthetic, deterministic customer-churn table.

Churn depends on contract, tenure, charges and support calls (with noise), so a
small model can learn it; `gender` is carried for the fairness gate and does not
drive churn. Run `python data/make_churn.py` to rebuild the committed file.

Current data for `mlops monitor churn --current FILE`:
  python data/make_churn.py /tmp/churn_normal.csv --seed 7           same distribution, new rows
  python data/make_churn.py /tmp/churn_drifted.csv --seed 7 --drift  customers moved: charges
      +30 on average, twice as many support calls, most on month-to-month contracts
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

ROWS = 5000
SEED = 20261125
CONTRACTS = ["month_to_month", "one_year", "two_year"]
PAYMENTS = ["card", "bank_transfer", "electronic_check", "mailed_check"]


def generate(rows: int = ROWS, seed: int = SEED, drift: bool = False) -> list[dict[str, object]]:
    rng = np.random.default_rng(seed)
    contract = rng.choice(3, size=rows, p=[0.80, 0.12, 0.08] if drift else [0.55, 0.25, 0.20])
    payment = rng.choice(4, size=rows, p=[0.3, 0.25, 0.3, 0.15])
    tenure = np.clip(rng.gamma(2.0, 12.0, rows) * (1 + contract * 0.6), 0, 120).round().astype(int)
    monthly = np.clip(rng.normal(95 if drift else 65, 25, rows), 15, 300).round(2)
    support_calls = rng.poisson((1.2 + (monthly > 90) * 0.8) * (2 if drift else 1), rows)
    products = rng.integers(1, 6, rows)
    senior = (rng.random(rows) < 0.16).astype(int)
    gender = rng.choice(["female", "male"], size=rows)
    logit = (
        -0.4 + 1.4 * (contract == 0) - 0.9 * (contract == 2) - 0.045 * tenure + 0.018 * (monthly - 65)
        + 0.45 * support_calls - 0.2 * products + 0.5 * (payment == 2) + 0.3 * senior
        + rng.normal(0, 0.6, rows)
    )
    churned = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(int)
    total = (tenure * monthly * rng.uniform(0.95, 1.05, rows)).round(2)
    missing_total = rng.random(rows) < 0.004  # a few new customers without a bill yet
    table = []
    for i in range(rows):
        table.append({
            "customer_id": f"C{i:05d}" if seed == SEED else f"C{seed}-{i:05d}",  # other samples: new customers
            "tenure_months": int(tenure[i]),
            "monthly_charges": float(monthly[i]),
            "total_charges": "" if missing_total[i] else float(total[i]),
            "support_calls": int(support_calls[i]),
            "num_products": int(products[i]),
            "senior_citizen": int(senior[i]),
            "contract": CONTRACTS[contract[i]],
            "payment_method": PAYMENTS[payment[i]],
            "gender": str(gender[i]),
            "churned": int(churned[i]),
        })
    return table


def write(path: Path, table: list[dict[str, object]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(table[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(table)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", nargs="?", type=Path, default=Path(__file__).with_name("churn.csv"))
    parser.add_argument("--rows", type=int, default=ROWS)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--drift", action="store_true", help="shift charges, support calls and contracts")
    args = parser.parse_args()
    write(args.target, generate(args.rows, args.seed, args.drift))
    print(f"wrote {args.target}")
