"""Quality gates of `evaluation.gates`: one row per gate, and exit 1 when any fails.

Gates: every `min_<metric>` / `max_<metric>` threshold, `max_latency_p95_ms` (measured
here on ONNX Runtime at batch 1), `max_model_size_mb`, `fairness.max_disparity` and
`onnx_parity_atol`. A gate that is configured but could not be measured (a metric that
was not computed, a NaN, no ONNX file) FAILS: a gate never passes by default.
Each gate's name is its key under `evaluation.gates`, so a failure points at the line
of the recipe that set the threshold.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from framework.errors import MlopsError, Problem

MB = 1_000_000  # max_model_size_mb is in SI megabytes (10^6 bytes), like `ls --si` and S3 consoles
LATENCY_WARMUP = 20


class GateError(MlopsError):
    """At least one quality gate failed (exit 1); one problem per failed gate."""


@dataclass(frozen=True)
class GateResult:
    name: str  # key under evaluation.gates, e.g. min_accuracy, fairness.max_disparity
    threshold: float
    observed: float | None  # None: configured but not measured -> failed
    passed: bool
    comparison: str = ">="  # observed must be >= (min_) or <= (max_) the threshold
    unit: str = ""

    @property
    def key(self) -> str:
        return f"evaluation.gates.{self.name}"

    def message(self) -> str:
        if self.observed is None or math.isnan(self.observed):
            return f"not measured, so the gate fails (threshold {_fmt(self.threshold, self.unit)})"
        word = "at least" if self.comparison == ">=" else "at most"
        return (
            f"observed {_fmt(self.observed, self.unit)}, must be {word} {_fmt(self.threshold, self.unit)}"
        )


@dataclass
class GateReport:
    results: list[GateResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(result.passed for result in self.results)

    @property
    def failures(self) -> list[GateResult]:
        return [result for result in self.results if not result.passed]

    def to_dict(self) -> dict:
        """JSON-safe (NaN observed becomes None), for run logs and CI artifacts."""
        rows = []
        for result in self.results:
            row = asdict(result)
            if row["observed"] is not None and math.isnan(row["observed"]):
                row["observed"] = None
            rows.append(row)
        return {"passed": self.passed, "gates": rows}

    def to_markdown(self, title: str = "Quality gates") -> str:
        from framework.runtime.github_actions import markdown_table

        rows = [(f"`{r.name}`", "-" if r.observed is None else _fmt(r.observed, r.unit), r.comparison,
                 _fmt(r.threshold, r.unit), "pass" if r.passed else "**FAIL**") for r in self.results]
        verdict = "all passed" if self.passed else f"**{len(self.failures)} failed**"
        return f"### {title}: {verdict}\n\n" + markdown_table(("gate", "observed", "", "threshold", "result"), rows)

    def rich_table(self):
        from rich.table import Table

        table = Table(title="quality gates", title_justify="left")
        table.add_column("gate")
        table.add_column("observed", justify="right")
        table.add_column("", justify="center")
        table.add_column("threshold", justify="right")
        table.add_column("result")
        for result in self.results:
            observed = "-" if result.observed is None else _fmt(result.observed, result.unit)
            verdict = "[green]pass[/green]" if result.passed else "[bold red]FAIL[/bold red]"
            table.add_row(result.name, observed, result.comparison, _fmt(result.threshold, result.unit), verdict)
        return table


def _fmt(value: float, unit: str = "") -> str:
    if value is None or math.isnan(value):
        return "nan"
    text = f"{value:.3g}" if abs(value) < 1e-3 and value != 0 else f"{value:.4f}".rstrip("0").rstrip(".")
    return f"{text} {unit}".rstrip()


def _check(name: str, threshold: float, observed: float | None, comparison: str, unit: str = "") -> GateResult:
    measured = observed is not None and not math.isnan(observed)
    if not measured:
        passed = False
    elif comparison == ">=":
        passed = observed >= threshold
    else:
        passed = observed <= threshold
    return GateResult(name, float(threshold), None if observed is None else float(observed), passed, comparison, unit)


def latency_p95_ms(
    onnx_path: str | Path, runs: int = 200, warmup: int = LATENCY_WARMUP, clock: Callable[[], int] = time.perf_counter_ns,
) -> float:
    """p95 latency in ms of one row (batch 1) on ONNX Runtime, CPU.

    One intra-op thread: at batch 1 a tiny MLP is dominated by thread hand-offs, and
    serving runs one model instance per CPU, so a single thread is both the steadier
    and the more honest figure. Warm-up runs are discarded (allocations, first-call
    kernel selection); the timed runs reuse one input, so only inference is measured.
    `clock` reads nanoseconds (tests inject one to know the figure it must give).
    """
    from framework.runtime.training.export import example_row, ort_session

    if runs < 1:
        raise ValueError("runs must be >= 1")
    session = ort_session(onnx_path, threads=1)
    feed = example_row(session)
    for _ in range(warmup):
        session.run(None, feed)
    timings = np.empty(runs, dtype=np.float64)
    for i in range(runs):
        start = clock()
        session.run(None, feed)
        timings[i] = clock() - start
    return float(np.percentile(timings, 95) / 1e6)


# Gates observed on the model itself rather than read from `metrics`, by gate name.
OBSERVED_GATES = ("max_latency_p95_ms", "max_model_size_mb", "fairness.max_disparity", "onnx_parity_atol")


def run_gates(
    recipe,
    metrics: dict[str, float],
    onnx_path: str | Path | None,
    model_size_bytes: int | None,
    disparity: float | None,
    parity_diff: float | None,
    *,
    latency_runs: int = 200,
    clock: Callable[[], int] = time.perf_counter_ns,
) -> GateReport:
    """Check every configured gate. Latency is measured here, on `onnx_path`.

    model_size_bytes: size of the file that will be served (ONNX or TorchScript);
    disparity: from metrics_eval.fairness_disparity; parity_diff: from export.parity;
    clock: latency_p95_ms's.
    """
    observed = observations(recipe, onnx_path, model_size_bytes, disparity, parity_diff, latency_runs=latency_runs,
                            clock=clock)
    return check_gates(recipe, metrics, observed)


def observations(
    recipe, onnx_path, model_size_bytes, disparity, parity_diff, *, latency_runs: int = 200,
    clock: Callable[[], int] = time.perf_counter_ns,
) -> dict[str, float | None]:
    """What the observed gates compare, by gate name (latency measured only when gated)."""
    latency = None
    if recipe.evaluation.gates.max_latency_p95_ms is not None and onnx_path is not None and Path(onnx_path).is_file():
        latency = latency_p95_ms(onnx_path, runs=latency_runs, clock=clock)
    return {
        "max_latency_p95_ms": latency,
        "max_model_size_mb": None if model_size_bytes is None else model_size_bytes / MB,
        "fairness.max_disparity": disparity,
        "onnx_parity_atol": parity_diff,
    }


def check_gates(recipe, metrics: Mapping[str, float], observed: Mapping[str, float | None]) -> GateReport:
    """One row per configured gate: `min_/max_<metric>` against `metrics`, the others
    against `observed` (OBSERVED_GATES); a value that is missing fails its gate."""
    gates = recipe.evaluation.gates
    results: list[GateResult] = []
    for key, threshold in sorted(gates.thresholds().items()):
        bound, metric = key.split("_", 1)
        results.append(_check(key, threshold, metrics.get(metric), ">=" if bound == "min" else "<="))
    if gates.max_latency_p95_ms is not None:
        results.append(_check("max_latency_p95_ms", gates.max_latency_p95_ms, observed.get("max_latency_p95_ms"), "<=", "ms"))
    if gates.max_model_size_mb is not None:
        results.append(_check("max_model_size_mb", gates.max_model_size_mb, observed.get("max_model_size_mb"), "<=", "MB"))
    if gates.fairness is not None:
        results.append(_check("fairness.max_disparity", gates.fairness.max_disparity, observed.get("fairness.max_disparity"), "<="))
    if gates.onnx_parity_atol is not None:
        results.append(_check("onnx_parity_atol", gates.onnx_parity_atol, observed.get("onnx_parity_atol"), "<="))
    return GateReport(results)


def raise_for_failures(report: GateReport) -> None:
    """GateError with one `evaluation.gates.<name>: observed ..., must be ...` per failed gate."""
    failures = report.failures
    if failures:
        raise GateError([Problem(None, result.key, result.message()) for result in failures])
