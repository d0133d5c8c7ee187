"""How the data checks show values: numbers as a person writes them, percentages, row
counts, examples of offending values; and the canonical form that compares a column's
values with `in_set` (shared by the checks, the target and null checks, and the split)."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import pandas as pd

MAX_EXAMPLES = 3  # examples of offending values shown per failed check


def number_text(x: Any) -> str:
    """Bounds and observed numbers as a person writes them: 500 not 500.0, 612.5 as is."""
    if isinstance(x, (bool, np.bool_)):
        return str(bool(x)).lower()
    if isinstance(x, numbers.Integral):
        return str(int(x))
    if isinstance(x, numbers.Real):
        f = float(x)
        return str(int(f)) if f.is_integer() and abs(f) < 1e15 else repr(f)
    return repr(x)


def observed_number_text(x: Any, series: pd.Series) -> str:
    """Observed values keep the column's kind: a float column shows 612.0, an int one 612."""
    if pd.api.types.is_float_dtype(series):
        return repr(float(x))
    return number_text(x)


def percent_text(fraction: float) -> str:
    pct = 100.0 * fraction
    if pct == 0:
        return "0%"
    text = f"{pct:.2f}".rstrip("0").rstrip(".") if pct >= 0.01 else f"{pct:.2g}"
    return f"{text}%"


def rows_text(n: int) -> str:
    return f"{n} row" if n == 1 else f"{n} rows"


def value_text(v: Any) -> str:
    """A value quoted the way the recipe would write it: strings quoted, numbers bare."""
    if isinstance(v, str):
        return repr(v)
    return number_text(v) if isinstance(v, numbers.Number) else repr(v)


def examples_text(counts: pd.Series) -> str:
    """"'weekly' (12 rows), 'daily' (2 rows)" for the most frequent offending values."""
    # Most frequent first, then by text, so the examples are the same every run.
    items = sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))
    shown = ", ".join(f"{value_text(v)} ({rows_text(int(n))})" for v, n in items[:MAX_EXAMPLES])
    more = len(items) - MAX_EXAMPLES
    return shown + (f" and {more} more" if more > 0 else "")


def canonical(v: Any) -> str:
    """A value as text for in_set: 1, 1.0 and '1' are equal; true and True are equal."""
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v)).lower()
    if isinstance(v, numbers.Number):
        return number_text(v)
    return str(v)


def is_in_set(values: pd.Series, allowed: list) -> pd.Series:
    """Mask of allowed non-null values.

    A numeric column against an all-numeric set compares numbers (so [0, 1] fits an int
    column, and the float column pandas makes of an int column with gaps). Otherwise both
    sides compare as text, so a recipe's [1, 2] matches a column read as '1', '2'.
    """
    if pd.api.types.is_numeric_dtype(values) and all(isinstance(v, numbers.Number) for v in allowed):
        return values.isin(allowed)
    texts = {canonical(v) for v in allowed}
    return values.map(lambda v: canonical(v) in texts)
