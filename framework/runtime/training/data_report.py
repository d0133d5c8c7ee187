"""The data report: every check's `CheckResult`, and the `DataReport` that prints them as a
terminal table, writes them as JSON and HTML, and turns failures into error lines, so the
three never disagree."""

from __future__ import annotations

import html
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


from framework.errors import MlopsError

REPORT_JSON = "data_report.json"
REPORT_HTML = "data_report.html"

# Fixed check order: the report reads (and diffs) the same every run.
COLUMN_CHECKS = ("not_null", "max_null_fraction", "min", "max", "in_set", "unique")
TABLE_CHECKS = ("min_rows", "max_duplicate_fraction", "min_class_fraction")
# What the model needs of the data whatever the expectations say (data_target.py,
# data_nulls.py); each is reported under the `data.<check>` key it concerns.
DATA_CHECKS = ("target", "features", "missing")


class DataError(MlopsError):
    """The data could not be read, failed its expectations, or cannot be split."""


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
