"""Data for apply: check `data.expectations` and run the data step (loading is in
data_source.py, the report in data_report.py, the split in splitting.py; the target and
null checks every recipe gets, in data_target.py and data_nulls.py).

Everything a person reads (terminal table, JSON, HTML, error lines) comes from the same
`CheckResult`s, so the three never disagree. pandas is imported at module level: this is
the runtime, not the import-light core; torch, ray and mlflow stay out of this module.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from framework.errors import Location, Problem
from framework.runtime.training.data_report import COLUMN_CHECKS, MAX_EXAMPLES, CheckResult, DataError, DataReport
from framework.runtime.training.data_source import load_table

# ---------------------------------------------------------------- checks


def _num(x: Any) -> str:
    """Bounds and observed numbers as a person writes them: 500 not 500.0, 612.5 as is."""
    if isinstance(x, (bool, np.bool_)):
        return str(bool(x)).lower()
    if isinstance(x, numbers.Integral):
        return str(int(x))
    if isinstance(x, numbers.Real):
        f = float(x)
        return str(int(f)) if f.is_integer() and abs(f) < 1e15 else repr(f)
    return repr(x)


def _observed_num(x: Any, series: pd.Series) -> str:
    """Observed values keep the column's kind: a float column shows 612.0, an int one 612."""
    if pd.api.types.is_float_dtype(series):
        return repr(float(x))
    return _num(x)


def _pct(fraction: float) -> str:
    pct = 100.0 * fraction
    if pct == 0:
        return "0%"
    text = f"{pct:.2f}".rstrip("0").rstrip(".") if pct >= 0.01 else f"{pct:.2g}"
    return f"{text}%"


def _rows(n: int) -> str:
    return f"{n} row" if n == 1 else f"{n} rows"


def _value(v: Any) -> str:
    """A value quoted the way the recipe would write it: strings quoted, numbers bare."""
    if isinstance(v, str):
        return repr(v)
    return _num(v) if isinstance(v, numbers.Number) else repr(v)


def _examples(counts: pd.Series) -> str:
    """"'weekly' (12 rows), 'daily' (2 rows)" for the most frequent offending values."""
    # Most frequent first, then by text, so the examples are the same every run.
    items = sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))
    shown = ", ".join(f"{_value(v)} ({_rows(int(n))})" for v, n in items[:MAX_EXAMPLES])
    more = len(items) - MAX_EXAMPLES
    return shown + (f" and {more} more" if more > 0 else "")


def _canon(v: Any) -> str:
    """A value as text for in_set: 1, 1.0 and '1' are equal; true and True are equal."""
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v)).lower()
    if isinstance(v, numbers.Number):
        return _num(v)
    return str(v)


def _in_set(values: pd.Series, allowed: list) -> pd.Series:
    """Mask of allowed non-null values.

    A numeric column against an all-numeric set compares numbers (so [0, 1] fits an int
    column, and the float column pandas makes of an int column with gaps). Otherwise both
    sides compare as text, so a recipe's [1, 2] matches a column read as '1', '2'.
    """
    if pd.api.types.is_numeric_dtype(values) and all(isinstance(v, numbers.Number) for v in allowed):
        return values.isin(allowed)
    texts = {_canon(v) for v in allowed}
    return values.map(lambda v: _canon(v) in texts)


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
    null_text = f"{_rows(nulls).replace('row', 'null')} ({_pct(nulls / rows if rows else 0.0)})"
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
                add(check, expected, f"not numeric: {_examples(bad_text.value_counts())}", False)
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
            observed = f"{check} {_observed_num(extreme, series)}"
            if n_out:
                observed += f" {op} {_num(bound)} ({_rows(n_out)})"
            add(check, expected, observed, n_out == 0)
        elif check == "in_set":
            bad = present[~_in_set(present, exp.in_set).to_numpy(dtype=bool)]
            if len(bad):
                add(check, expected, f"unexpected values: {_examples(bad.value_counts())}", False)
            else:
                add(check, expected, f"{present.nunique()} distinct values, all allowed", True)
        elif check == "unique":
            # Nulls are not values, so they never repeat (not_null is the check for them).
            counts = present.value_counts()
            repeated = counts[counts > 1]
            if len(repeated):
                add(check, expected, f"{len(repeated)} repeated {'value' if len(repeated) == 1 else 'values'}: "
                    f"{_examples(repeated)}", False)
            else:
                add(check, expected, f"{len(present)} distinct values", True)
    return results


def _expected(check: str, exp: Any) -> str:
    if check == "not_null":
        return "no nulls"
    if check == "max_null_fraction":
        return f"<= {_pct(exp.max_null_fraction)} nulls"
    if check == "min":
        return f">= {_num(exp.min)}"
    if check == "max":
        return f"<= {_num(exp.max)}"
    if check == "in_set":
        return "one of " + ", ".join(_value(v) for v in exp.in_set)
    if check == "unique":
        return "no repeated values"
    if check == "min_rows":
        return f">= {_rows(exp.min_rows)}"
    if check == "max_duplicate_fraction":
        return f"<= {_pct(exp.max_duplicate_fraction)} duplicate rows"
    if check == "min_class_fraction":
        return f"every class >= {_pct(exp.min_class_fraction)} of rows"
    raise AssertionError(check)


def _table_results(table: Any, df: pd.DataFrame, target: str) -> list[CheckResult]:
    rows = len(df)
    results = []
    if table.min_rows is not None:
        results.append(CheckResult("table", "min_rows", _expected("min_rows", table), _rows(rows),
                                   rows >= table.min_rows))
    if table.max_duplicate_fraction is not None:
        # A duplicate is a full row equal to an earlier one (the first copy is not counted).
        dups = int(df.duplicated(keep="first").sum()) if rows else 0
        fraction = dups / rows if rows else 0.0
        results.append(CheckResult("table", "max_duplicate_fraction", _expected("max_duplicate_fraction", table),
                                   f"{dups} duplicate {'row' if dups == 1 else 'rows'} ({_pct(fraction)})",
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
                    f"{_value(c)} {_pct(n / len(labels))} ({_rows(int(n))})" for c, n in items)
                if len(rare) > MAX_EXAMPLES:
                    observed += f" and {len(rare) - MAX_EXAMPLES} more"
            else:
                c, n = sorted(counts.items(), key=lambda kv: (kv[1], str(kv[0])))[0]
                observed = f"smallest class {_value(c)}: {_pct(n / len(labels))} ({_rows(int(n))})"
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
    from framework.runtime.training import data_nulls, data_target  # they build on this module's CheckResult

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
