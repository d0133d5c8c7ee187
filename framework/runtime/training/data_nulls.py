"""Nulls in the feature columns: how many, which text pandas read as null, and what fills
them (`data.missing: impute`), or the refusal (`data.missing: error`; a feature with no
value at all is refused either way).

pandas reads `n/a`, `NA`, `null`, an empty field and more as null without a word; the
CSV's raw text says which spelling each null came from, so the report can show it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from framework.runtime.training.data_report import CheckResult
from framework.runtime.training.data_values import rows_text

# DataFrame.attrs key load_table sets: {column: {text: rows}} of the nulls a CSV spelled out.
NULL_TEXT = "mlops.null_text"
FILLS = {"numeric": "median of the training split", "categorical": "no category (all-zero one-hot)"}


def null_text(source: str | Path, df: pd.DataFrame, columns: list[str]) -> dict[str, dict[str, int]]:
    """Per column with nulls in `df` (read from the CSV `source`), the raw text of those
    nulls and its rows, most frequent first; {} when the file cannot be read again."""
    with_nulls = [c for c in columns if c in df.columns and df[c].isna().any()]
    if not with_nulls:
        return {}
    try:
        raw = pd.read_csv(source, usecols=with_nulls, dtype=str, keep_default_na=False)
    except Exception:  # noqa: BLE001 - the typed read succeeded; spellings are a nicety
        return {}
    if len(raw) != len(df):  # never guess which row a spelling belongs to
        return {}
    spellings = {}
    for column in with_nulls:
        counts = raw[column][df[column].isna().to_numpy()].value_counts()
        spellings[column] = {str(t): int(n) for t, n in sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))}
    return spellings


@dataclass(frozen=True)
class NullCount:
    """One feature's nulls; `text`: what the file said where pandas read null ('' = empty field)."""

    column: str
    kind: str  # numeric | categorical
    nulls: int
    rows: int
    text: dict[str, int] = field(default_factory=dict)

    def spelled(self) -> str:
        """" (40 read from the text 'n/a', 3 empty fields)", or "" for real nulls (parquet)."""
        texts = [f"{n} from {t!r}" for t, n in self.text.items() if t != ""]
        if texts:
            texts[0] = texts[0].replace(" from ", " read from the text ", 1)
        empty = self.text.get("")
        parts = texts + ([f"{empty} empty {'field' if empty == 1 else 'fields'}"] if empty else [])
        return f" ({', '.join(parts)})" if parts else ""

    def to_dict(self, missing: str) -> dict[str, Any]:
        filled = FILLS[self.kind] if missing == "impute" else None  # error: nothing is filled, nulls are refused
        return {"column": self.column, "kind": self.kind, "nulls": self.nulls, "read_from_text": dict(self.text),
                "filled_with": filled if self.nulls else None}


def null_counts(recipe: Any, df: pd.DataFrame) -> list[NullCount]:
    """Every feature present in `df`, in data.features order."""
    data = recipe.data
    spellings = df.attrs.get(NULL_TEXT, {})
    return [NullCount(c, "categorical" if c in data.categorical else "numeric", int(df[c].isna().sum()), len(df),
                      dict(spellings.get(c, {})))
            for c in data.features if c in df.columns]


def null_results(recipe: Any, counts: list[NullCount]) -> list[CheckResult]:
    """A row per feature with nulls: what fills them, or why the data is refused."""
    missing = recipe.data.missing
    results = []
    for c in counts:
        if not c.nulls:
            continue
        if c.nulls == c.rows:
            results.append(CheckResult(
                c.column, "features", "a value in some row of every feature",
                f"'{c.column}' is null in all {rows_text(c.rows)}{c.spelled()}: there is nothing to learn from or "
                "impute with; fix the data or drop it from data.features", False))
        elif missing == "error":
            results.append(CheckResult(
                c.column, "missing", "no nulls in features (data.missing: error)",
                f"'{c.column}' has {c.nulls} {'null' if c.nulls == 1 else 'nulls'} in {rows_text(c.rows)}{c.spelled()} "
                "and data.missing is error: fill them in the data, or set data.missing: impute", False))
        else:
            results.append(CheckResult(
                c.column, "missing", f"nulls filled: {FILLS[c.kind]}",
                f"{c.column}: {c.nulls} {'null' if c.nulls == 1 else 'nulls'}{c.spelled()}", True))
    return results


def fill_summary(recipe: Any, nulls: list[dict[str, Any]], train_df: pd.DataFrame) -> dict[str, Any]:
    """data/missing.json of the run: the report's nulls, with the median each numeric
    feature's nulls get (learned, like the feature pipeline's, from the training split)."""
    columns = {}
    for entry in nulls:
        item = dict(entry)
        if entry["kind"] == "numeric" and entry["column"] in train_df.columns:
            values = pd.to_numeric(train_df[entry["column"]], errors="coerce")
            item["fill_value"] = float(values.median()) if values.notna().any() else None
        columns[entry["column"]] = item
    return {"missing": recipe.data.missing, "columns": columns}


__all__ = ["NULL_TEXT", "FILLS", "NullCount", "null_text", "null_counts", "null_results", "fill_summary"]
