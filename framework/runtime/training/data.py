"""Data for apply: load `data.source`, check `data.expectations`, report (the split is
in splitting.py; the target and null checks every recipe gets, in data_target.py and
data_nulls.py).

Everything a person reads (terminal table, JSON, HTML, error lines) comes from the same
`CheckResult`s, so the three never disagree. pandas is imported at module level: this is
the runtime, not the import-light core; torch, ray and mlflow stay out of this module.
"""

from __future__ import annotations

import html
import importlib.util
import json
import numbers
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import numpy as np
import pandas as pd

from framework.errors import Location, MlopsError, Problem
from framework.recipe.suggest import did_you_mean

REPORT_JSON = "data_report.json"
REPORT_HTML = "data_report.html"
MAX_EXAMPLES = 3  # examples of offending values shown per failed check

# fsspec names the package in its ImportError, but not every version does; these are the
# usual ones, so the error can always say what to install.
_FSSPEC_PACKAGES = {"s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs",
                    "abfs": "adlfs", "abfss": "adlfs", "hf": "huggingface_hub", "http": "aiohttp",
                    "https": "aiohttp"}

# Fixed check order: the report reads (and diffs) the same every run.
COLUMN_CHECKS = ("not_null", "max_null_fraction", "min", "max", "in_set", "unique")
TABLE_CHECKS = ("min_rows", "max_duplicate_fraction", "min_class_fraction")
# What the model needs of the data whatever the expectations say (data_target.py,
# data_nulls.py); each is reported under the `data.<check>` key it concerns.
DATA_CHECKS = ("target", "features", "missing")


class DataError(MlopsError):
    """The data could not be read, failed its expectations, or cannot be split."""


# ---------------------------------------------------------------- loading


def _resolve(uri: str, root: Path) -> tuple[str, str | Path]:
    """(scheme, path or URL): local files become Paths, everything else stays a URL."""
    parsed = urlparse(uri)
    scheme = parsed.scheme.lower()
    if scheme == "file":
        # file:///abs and file://localhost/abs are absolute; file://data/x.csv is read as the
        # relative path people mean when they write it.
        host = "" if parsed.netloc in ("", "localhost") else parsed.netloc
        path = Path(unquote(host + parsed.path) if host else unquote(parsed.path))
        return "", path if path.is_absolute() else root / path
    if len(scheme) <= 1:  # no scheme (or a Windows drive letter): a path
        path = Path(uri)
        return "", path if path.is_absolute() else root / path
    return scheme, uri


def _check_remote_support(scheme: str, uri: str, key: str = "data.source") -> None:
    """A clear error naming the package to install, before pandas fails obscurely."""
    wanted = _FSSPEC_PACKAGES.get(scheme)
    if importlib.util.find_spec("fsspec") is None:
        extra = f" and {wanted}" if wanted else ""
        raise DataError([Problem(Location(uri), f"{key}.uri",
                                 f"reading {scheme}:// URIs needs fsspec{extra}: pip install fsspec{extra.replace(' and', '')}")])
    import fsspec

    try:
        fsspec.get_filesystem_class(scheme)
    except ImportError:
        package = wanted or f"the fsspec implementation of {scheme}://"
        raise DataError([Problem(Location(uri), f"{key}.uri",
                                 f"reading {scheme}:// URIs needs {package}: pip install {package}")]) from None
    except ValueError:
        raise DataError([Problem(Location(uri), f"{key}.uri",
                                 f"unknown URI scheme '{scheme}://'; use a path, file://, s3:// or gs://")]) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def load_table(recipe: Any, root: Path, source: Any = None, key: str = "data.source") -> pd.DataFrame:
    """Read `data.source` (or `source`, any object with `uri` and `format`, named `key` in
    errors: `evaluation.dataset`) and return its recipe columns (features, target,
    extra_columns) in that order.

    Only the recipe's columns are kept so every later step (checks, duplicates, split,
    training) sees the same table whatever else the file carries.
    """
    data = recipe.data
    if data is None:
        raise DataError([Problem(None, "data", "the recipe has no data section to load")])
    own_source = source is None  # data.source: its report counts the text read as null
    source = source if source is not None else data.source
    uri, fmt = source.uri, source.format
    where = Location(uri)
    scheme, target = _resolve(uri, Path(root))
    if scheme:
        _check_remote_support(scheme, uri, key)
    elif not target.exists():
        parent = target.parent
        near = did_you_mean(target.name, (p.name for p in parent.iterdir())) if parent.is_dir() else ""
        raise DataError([Problem(where, f"{key}.uri", f"no such file: {target}{near}")])
    elif target.is_dir():
        raise DataError([Problem(where, f"{key}.uri", f"{target} is a directory, not a {fmt} file")])
    try:
        df = pd.read_csv(target) if fmt == "csv" else pd.read_parquet(target)
    except FileNotFoundError:
        raise DataError([Problem(where, f"{key}.uri", f"no such file: {target}")]) from None
    except Exception as exc:  # pandas/pyarrow raise many types; all mean "not readable as fmt"
        raise DataError([Problem(where, key, f"cannot read as {fmt}: {_first_line(exc)}")]) from None
    df.columns = [str(c) for c in df.columns]  # parquet may carry non-string names

    present = list(df.columns)
    problems = []
    for column_key, columns in (("data.features", data.features), ("data.target", [data.target]),
                                ("data.extra_columns", data.extra_columns)):
        for column in columns:
            if column not in present:
                problems.append(Problem(where, column_key, f"column '{column}' is not in {uri}"
                                        f"{did_you_mean(column, present)}; it has: {', '.join(present) or '(none)'}"))
    if problems:
        raise DataError(problems)
    table = df[data.columns()]
    if fmt == "csv" and own_source:
        from framework.runtime.training.data_nulls import NULL_TEXT, null_text

        table.attrs[NULL_TEXT] = null_text(target, df, data.features)
    return table


# ---------------------------------------------------------------- results and report


@dataclass(frozen=True)
class CheckResult:
    """One expectation checked: `scope` is "table" or the column's name."""

    scope: str
    check: str
    expected: str
    observed: str
    passed: bool

    @property
    def key(self) -> str:
        """The recipe key that configured the check (what an error line names)."""
        if self.check in DATA_CHECKS:
            return f"data.{self.check}"
        if self.scope == "table":
            return f"data.expectations.table.{self.check}"
        return f"data.expectations.columns.{self.scope}.{self.check}"

    @property
    def message(self) -> str:
        """An error line after its key: a data check's observation is already a sentence."""
        if self.check in DATA_CHECKS:
            return self.observed
        return f"expected {self.expected}, observed {self.observed}"

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, **asdict(self)}


@dataclass
class DataReport:
    """Every configured check of one table, in the recipe's column order then table checks,
    then (`check_table`) the data checks; `nulls`: per feature, its nulls and what fills them."""

    source: str
    rows: int
    columns: list[str]
    results: list[CheckResult] = field(default_factory=list)
    nulls: list[dict[str, Any]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if not r.passed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "rows": self.rows,
            "columns": list(self.columns),
            "passed": self.passed,
            "checks": len(self.results),
            "failed": len(self.failures),
            "results": [r.to_dict() for r in self.results],
            "nulls": [dict(n) for n in self.nulls],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DataReport:
        fields = ("scope", "check", "expected", "observed", "passed")
        return cls(d["source"], d["rows"], list(d["columns"]),
                   [CheckResult(**{k: r[k] for k in fields}) for r in d["results"]],
                   [dict(n) for n in d.get("nulls", [])])

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    def to_html(self) -> str:
        e = html.escape
        status = "passed" if self.passed else f"FAILED ({len(self.failures)} of {len(self.results)} checks)"
        rows = "\n".join(
            f'<tr class="{"pass" if r.passed else "fail"}"><td>{e(r.key)}</td><td>{e(r.expected)}</td>'
            f'<td>{e(r.observed)}</td><td>{"pass" if r.passed else "FAIL"}</td></tr>'
            for r in self.results
        )
        # Self-contained: inline CSS, no scripts or external assets (CI artifacts open offline).
        return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>data report: {e(self.source)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; }}
th, td {{ border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }}
th {{ background: #eee; }}
tr.pass td:last-child {{ color: #176f2c; font-weight: bold; }}
tr.fail {{ background: #fde8e8; }}
tr.fail td:last-child {{ color: #b3261e; font-weight: bold; }}
.summary.pass {{ color: #176f2c; }} .summary.fail {{ color: #b3261e; }}
</style></head>
<body>
<h1>Data report</h1>
<p>source <code>{e(self.source)}</code>: {self.rows} rows, {len(self.columns)} columns</p>
<p class="summary {"pass" if self.passed else "fail"}">{e(status)}</p>
<table>
<thead><tr><th>check</th><th>expected</th><th>observed</th><th>result</th></tr></thead>
<tbody>
{rows}
</tbody>
</table>
</body></html>
"""

    def write(self, directory: Path) -> tuple[Path, Path]:
        """Write data_report.json and data_report.html into `directory` (created if needed)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        json_path, html_path = directory / REPORT_JSON, directory / REPORT_HTML
        json_path.write_text(self.to_json(), encoding="utf-8")
        html_path.write_text(self.to_html(), encoding="utf-8")
        return json_path, html_path

    def to_markdown(self) -> str:
        """The report as a GitHub job summary: a status line and one row per check."""
        from framework.runtime.github_actions import markdown_table

        status = "passed" if self.passed else f"**FAILED** ({len(self.failures)} of {len(self.results)} checks)"
        rows = [(f"`{r.key}`", r.expected, r.observed, "pass" if r.passed else "**FAIL**") for r in self.results]
        return (f"### Data report: `{self.source}`\n\n{self.rows} rows, {len(self.columns)} columns: {status}\n\n"
                + markdown_table(("check", "expected", "observed", "result"), rows))

    def rich_table(self):
        """A rich Table for the terminal. Cells are Text, so values like '[x]' are not markup."""
        from rich.table import Table
        from rich.text import Text

        verdict = "passed" if self.passed else f"{len(self.failures)} of {len(self.results)} checks failed"
        table = Table(title=f"data checks: {self.source} ({self.rows} rows) - {verdict}", title_justify="left")
        table.add_column("check", no_wrap=True)  # keys are what people grep for: keep them whole
        for name in ("expected", "observed", "result"):
            table.add_column(name, overflow="fold")
        for r in self.results:
            table.add_row(Text(r.key), Text(r.expected), Text(r.observed),
                          Text("pass", style="green") if r.passed else Text("FAIL", style="bold red"))
        return table


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
    from framework.runtime.training import data_nulls, data_target# they build on this module's CheckResult

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
