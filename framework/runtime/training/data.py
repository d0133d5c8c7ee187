"""Data for apply: check `data.expectations` and run the data step (loading is in
data_source.py, the report in data_report.py, the split in splitting.py; the target and
null checks every recipe gets, in data_target.py and data_nulls.py).

Everything a person reads (terminal table, JSON, HTML, error lines) comes from the same
`CheckResult`s, so the three never disagree. pandas is imported at module level: this is
the runtime, not the import-light core; torch, ray and mlflow stay out of this module.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from framework.errors import Location, Problem
from framework.runtime.training import data_nulls, data_target
from framework.runtime.training.data_report import COLUMN_CHECKS, CheckResult, DataError, DataReport
from framework.runtime.training.data_values import (
    MAX_EXAMPLES,
    examples_text,
    is_in_set,
    number_text,
    observed_number_text,
    percent_text,
    rows_text,
    value_text,
)
from framework.runtime.training.data_source import load_table

# ---------------------------------------------------------------- checks


def _column_results(column: str, series: pd.Series | None, exp: Any, rows: int) -> list[CheckResult]:
    results = []

    def add(check: str, expected: str, observed: str, passed: bool) -> None:
        results.append(CheckResult(column, check, expected, observed, bool(passed)))

    configured = [c for c in COLUMN_CHECKS
                  if (getattr(exp, c) is True if c in ("not_null", "unique") else getattr(exp, c) is not None)]
    if series is None:
        # The recipe validator keeps expectations to loaded columns; a hand-made frame may not.
        for check in configured:
            add(check, _expected(check, exp), "column missing", False)
        return results

    nulls = int(series.isna().sum())
    null_text = f"{rows_text(nulls).replace('row', 'null')} ({percent_text(nulls / rows if rows else 0.0)})"
    present = series.dropna()
    for check in configured:
        expected = _expected(check, exp)
        if check == "not_null":
            add(check, expected, null_text, nulls == 0)
        elif check == "max_null_fraction":
            add(check, expected, null_text, (nulls / rows if rows else 0.0) <= exp.max_null_fraction)
        elif check in ("min", "max"):
            numeric = pd.to_numeric(present, errors="coerce")
            bad_text = present[numeric.isna()]
            if len(bad_text):
                add(check, expected, f"not numeric: {examples_text(bad_text.value_counts())}", False)
                continue
            if numeric.empty:
                add(check, expected, "no values", True)  # nothing to bound; not_null catches emptiness
                continue
            bound = getattr(exp, check)
            if check == "min":
                extreme, outside = numeric.min(), numeric < bound
                op = "<"
            else:
                extreme, outside = numeric.max(), numeric > bound
                op = ">"
            n_out = int(outside.sum())
            observed = f"{check} {observed_number_text(extreme, series)}"
            if n_out:
                observed += f" {op} {number_text(bound)} ({rows_text(n_out)})"
            add(check, expected, observed, n_out == 0)
        elif check == "in_set":
            bad = present[~is_in_set(present, exp.in_set).to_numpy(dtype=bool)]
            if len(bad):
                add(check, expected, f"unexpected values: {examples_text(bad.value_counts())}", False)
            else:
                add(check, expected, f"{present.nunique()} distinct values, all allowed", True)
        elif check == "unique":
            # Nulls are not values, so they never repeat (not_null is the check for them).
            counts = present.value_counts()
            repeated = counts[counts > 1]
            if len(repeated):
                add(check, expected, f"{len(repeated)} repeated {'value' if len(repeated) == 1 else 'values'}: "
                    f"{examples_text(repeated)}", False)
            else:
                add(check, expected, f"{len(present)} distinct values", True)
    return results


def _expected(check: str, exp: Any) -> str:
    if check == "not_null":
        return "no nulls"
    if check == "max_null_fraction":
        return f"<= {percent_text(exp.max_null_fraction)} nulls"
    if check == "min":
        return f">= {number_text(exp.min)}"
    if check == "max":
        return f"<= {number_text(exp.max)}"
    if check == "in_set":
        return "one of " + ", ".join(value_text(v) for v in exp.in_set)
    if check == "unique":
        return "no repeated values"
    if check == "min_rows":
        return f">= {rows_text(exp.min_rows)}"
    if check == "max_duplicate_fraction":
        return f"<= {percent_text(exp.max_duplicate_fraction)} duplicate rows"
    if check == "min_class_fraction":
        return f"every class >= {percent_text(exp.min_class_fraction)} of rows"
    raise AssertionError(check)


def _table_results(table: Any, df: pd.DataFrame, target: str) -> list[CheckResult]:
    rows = len(df)
    results = []
    if table.min_rows is not None:
        results.append(CheckResult("table", "min_rows", _expected("min_rows", table), rows_text(rows),
                                   rows >= table.min_rows))
    if table.max_duplicate_fraction is not None:
        # A duplicate is a full row equal to an earlier one (the first copy is not counted).
        dups = int(df.duplicated(keep="first").sum()) if rows else 0
        fraction = dups / rows if rows else 0.0
        results.append(CheckResult("table", "max_duplicate_fraction", _expected("max_duplicate_fraction", table),
                                   f"{dups} duplicate {'row' if dups == 1 else 'rows'} ({percent_text(fraction)})",
                                   fraction <= table.max_duplicate_fraction))
    if table.min_class_fraction is not None:
        expected = _expected("min_class_fraction", table)
        labels = df[target].dropna() if target in df.columns else pd.Series(dtype=object)
        if labels.empty:
            observed = "column missing" if target not in df.columns else "no target values"
            results.append(CheckResult("table", "min_class_fraction", expected, observed, False))
        else:
            counts = labels.value_counts()
            # Shares of the labelled rows; nulls in the target are the not_null check's business.
            rare = counts[counts / len(labels) < table.min_class_fraction]
            if len(rare):
                items = sorted(rare.items(), key=lambda kv: (kv[1], str(kv[0])))[:MAX_EXAMPLES]
                observed = "rare classes: " + ", ".join(
                    f"{value_text(c)} {percent_text(n / len(labels))} ({rows_text(int(n))})" for c, n in items)
                if len(rare) > MAX_EXAMPLES:
                    observed += f" and {len(rare) - MAX_EXAMPLES} more"
            else:
                c, n = sorted(counts.items(), key=lambda kv: (kv[1], str(kv[0])))[0]
                observed = f"smallest class {value_text(c)}: {percent_text(n / len(labels))} ({rows_text(int(n))})"
            results.append(CheckResult("table", "min_class_fraction", expected, observed, not len(rare)))
    return results


def check_expectations(recipe: Any, df: pd.DataFrame) -> DataReport:
    """Run every configured check; one CheckResult each, columns in recipe order, then the table."""
    data = recipe.data
    results: list[CheckResult] = []
    rows = len(df)
    for column, exp in data.expectations.columns.items():
        results += _column_results(column, df[column] if column in df.columns else None, exp, rows)
    results += _table_results(data.expectations.table, df, data.target)
    return DataReport(source=data.source.uri, rows=rows, columns=[str(c) for c in df.columns], results=results)


def raise_for_failures(report: DataReport, source: str | Location | None = None) -> None:
    """DataError with one problem per failed check (`source: key: expected X, observed Y`)."""
    failures = report.failures
    if not failures:
        return
    if source is None:
        source = report.source
    location = source if isinstance(source, Location) else Location(str(source))
    raise DataError([Problem(location, r.key, r.message) for r in failures])


# ---------------------------------------------------------------- the step


def check_table(recipe: Any, df: pd.DataFrame) -> DataReport:
    """The report apply and check-data write: data.expectations, then what the model needs
    of the data (the target, data_target.py) and each feature's nulls (data_nulls.py)."""
    report = check_expectations(recipe, df)
    report.results += data_target.target_results(recipe, df)
    counts = data_nulls.null_counts(recipe, df)
    report.results += data_nulls.null_results(recipe, counts)
    report.nulls = [c.to_dict(recipe.data.missing) for c in counts]
    return report


def load_and_check(recipe: Any, root: Path, report_dir: Path | None = None,
                   show: Callable[[Any], None] | None = None) -> tuple[pd.DataFrame, DataReport]:
    """The data step of apply: load, check, write the report, show its table (`show`, e.g.
    a console's print), stop on a failed check.

    The report is written and shown before raising so a failed run still leaves (and
    prints) the rows that explain its error lines.
    """
    df = load_table(recipe, root)
    report = check_table(recipe, df)
    if report_dir is not None:
        report.write(report_dir)
    if show is not None:
        show(report.rich_table())
    raise_for_failures(report)
    return df, report


__all__ = ["DataError", "CheckResult", "DataReport", "load_table", "check_expectations", "check_table",
           "raise_for_failures", "load_and_check"]
