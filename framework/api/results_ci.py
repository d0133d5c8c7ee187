"""The results of the commands a CI pipeline chains (check-data, evaluate, gate, smoke),
of `mlops monitor` and of `mlops batch`: each wraps what the runtime returned.
Like every `Result` (results.py) they carry their text, exit code, stderr tables and
GitHub hand-over (the job-summary markdown); an attribute they do not define is read
from the runtime object they wrap, so `api.gate(...).report` and
`api.monitor(...).drifted` read as they did before. Import-light: the runtime objects
come from the API's functions, which import the runtime when they run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from framework.api.results import Err, Handover, Result


class Wraps(Result):
    """A result around one runtime object (`value`), whose attributes it reads through."""

    value: Any

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(object.__getattribute__(self, "value"), name)


@dataclass(frozen=True)
class DataCheck(Result):
    recipe: str
    env: str
    report: Any  # framework.runtime.training.data.DataReport, or a RAG CorpusReport
    report_dir: Path

    @property
    def passed(self) -> bool:
        return self.report.passed

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def tables(self) -> list[Any]:
        return [self.report.rich_table()]

    def handover(self) -> Handover:
        return Handover(summary=self.report.to_markdown())

    def lines(self) -> list[str]:
        from framework.project import display_path

        out = [f"report: {display_path(self.report_dir)}"]
        if self.passed:
            return out + [f"{self.recipe} ({self.env}): data passed its checks"]
        # `source: key: message`, as apply's data step says it
        return out + [Err(failure if isinstance(failure, str) else f"{self.report.source}: {failure.key}: {failure.message}")
                      for failure in self.report.failures]


@dataclass(frozen=True)
class EvaluateResult(Wraps):
    """A registered version re-scored (framework.runtime.pipeline.evaluate.VersionEvaluation)."""

    value: Any

    def handover(self) -> Handover:
        return Handover(summary=self.value.to_markdown())

    def lines(self) -> list[str]:
        v = self.value
        return [f"  {name:<16} {value}" for name, value in v.rows_table()] + [
            f"{v.recipe} ({v.env}): version {v.version} on {v.rows} rows of {v.dataset}; MLflow run {v.run_id}"]


@dataclass(frozen=True)
class RetrievalResult(Result):
    """An LLM recipe's retrieval on its labelled questions against evaluation.gates."""

    recipe: str  # as the command named it
    report: Any  # framework.runtime.rag.evaluate.RetrievalReport
    gates: Any  # framework.runtime.training.gates.GateReport

    @property
    def passed(self) -> bool:
        return self.gates.passed

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def tables(self) -> list[Any]:
        return [self.gates.rich_table()] if hasattr(self.gates, "rich_table") else []

    def handover(self) -> Handover | None:
        return Handover(summary=self.gates.to_markdown("Retrieval gates")) if hasattr(self.gates, "to_markdown") else None

    def lines(self) -> list[str]:
        report = self.report
        verdict = "gates passed" if self.passed else "gates FAILED"
        return [f"{self.recipe}: recall@{report.k} {report.recall_at_k:.3f}, MRR {report.mrr:.3f} on "
                f"{report.questions} questions: {verdict}"] + [
            f"  missed: {row['question']} (expected {', '.join(row['expected'])})"
            for row in report.rows if not row.get("hit")]


@dataclass(frozen=True)
class GateDecision(Wraps):
    """A version's recorded metrics against the gates (framework.runtime.pipeline.gate.GateOutcome)."""

    value: Any

    @property
    def passed(self) -> bool:
        return self.value.report.passed

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def tables(self) -> list[Any]:
        return [self.value.report.rich_table()]

    def handover(self) -> Handover:
        return Handover(summary=self.value.report.to_markdown(f"Quality gates of version {self.value.version}"))

    def lines(self) -> list[str]:
        o = self.value
        out = [f"{o.recipe} ({o.env}): version {o.version} from {', '.join(o.sources)}"]
        if not self.passed:
            failures = o.report.failures
            return out + [Err(f"{result.key}: {result.message()}") for result in failures] + [
                Err(f"gate: version {o.version} failed {len(failures)} gate(s); no alias moved")]
        moved = f"is now {' and '.join(o.promoted)}" if o.promoted else "passed (no alias moved without --promote)"
        return out + [f"gates passed: version {o.version} {moved}"]


@dataclass(frozen=True)
class SmokeResult(Wraps):
    """Requests against a deployed endpoint (framework.runtime.pipeline.smoke.SmokeReport)."""

    value: Any

    @property
    def exit_code(self) -> int:
        return 0 if self.value.passed else 1

    def handover(self) -> Handover:
        return Handover(summary=self.value.to_markdown())

    def lines(self) -> list[str]:
        out = [self.value.summary()]
        if not self.value.passed:
            out += [Err(f"smoke: {problem}") for problem in self.value.problems()]
        return out


@dataclass(frozen=True)
class MonitorRun(Wraps):
    """A drift check (framework.runtime.monitor.run.MonitorResult): exit 0 none, 3 drift."""

    value: Any

    @property
    def exit_code(self) -> int:
        return self.value.exit_code

    def lines(self) -> list[str]:
        from framework.runtime.monitor.run import summary_lines

        return list(summary_lines(self.value))


@dataclass(frozen=True)
class BatchRun(Wraps):
    """A table scored offline (framework.runtime.batch.parts.BatchResult)."""

    value: Any

    def lines(self) -> list[str]:
        r = self.value
        resumed = f" ({r.skipped} part(s) from the earlier run)" if r.skipped else ""
        return [f"{r.rows} rows scored by {r.model} version {r.version} in {r.seconds:.1f} s: "
                f"{r.output} ({len(r.parts)} part(s){resumed})"]
