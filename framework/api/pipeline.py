"""The API of the commands a CI pipeline chains: `check_data` -> (training) ->
`evaluate_version` -> `gate` -> (deploy) -> `smoke`; and `evaluate` for the retrieval
of an LLM recipe (`mlops eval`), with `evaluate_recipe` choosing between the two for
`mlops evaluate`.
The work is in framework.runtime.pipeline and framework.runtime.rag; each function here
loads the recipe, calls it, and returns a result (results_ci.py) whose exit code is
that of the CI job (1: a failed check or gate), or raises an `MlopsError`. Nothing here
prints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from framework.api.recipes import as_project, load_recipe
from framework.api.results_ci import DataCheck, EvaluateResult, GateDecision, RetrievalResult, SmokeResult
from framework.errors import MlopsError, Problem
from framework.project import Project


def _load(recipe: str, env: str | None, project: Project | Path | None):
    proj = as_project(project)
    return proj, load_recipe(recipe, env, (), proj).recipe


def _require_version(version: str | None, what: str) -> str:
    if version is None:
        raise MlopsError([Problem(None, "--version", f"which registered version to {what}: e.g. --version 3 "
                                  "(the train job's output)")])
    return str(version)


def check_data(recipe: str, env: str | None = None, report_dir: Path | None = None,
               project: Project | Path | None = None) -> DataCheck:
    """Load the recipe's data and run its expectations (a RAG recipe: load and split its
    documents); the report (JSON, HTML) goes to report_dir, default
    `.mlops/reports/<recipe>/<env>/data/`. Raises DataError when the data cannot be read;
    a failed expectation or data check (the target, nulls) is in the returned report
    (`passed` False, exit code 1)."""
    proj, r = _load(recipe, env, project)
    folder = Path(report_dir) if report_dir is not None else proj.state_dir / "reports" / r.name / r.environment / "data"
    if r.data is not None:
        from framework.runtime.training import data

        report = data.check_table(r, data.load_table(r, proj.root))
    elif r.rag is not None:
        from framework.runtime.rag.corpus_report import documents_report

        report = documents_report(r, proj.root)
    else:
        raise MlopsError([Problem(None, "data", f"{r.name} has neither a data nor a rag section to check")])
    report.write(folder)
    return DataCheck(r.name, r.environment, report, folder)


def evaluate_version(recipe: str, version: str, env: str | None = None,
                     project: Project | Path | None = None) -> EvaluateResult:
    """Re-score a registered version on the validation split (or evaluation.dataset) and
    record it in MLflow; an EvaluateResult around framework.runtime.pipeline.evaluate.VersionEvaluation."""
    from framework.runtime.pipeline.evaluate import evaluate_version as run

    proj, r = _load(recipe, env, project)
    return EvaluateResult(run(r, proj.root, proj.state_dir, str(version)))


def evaluate(recipe: str, env: str | None = None, project: Project | Path | None = None,
             console: Any = None) -> RetrievalResult:
    """`mlops eval`: an LLM recipe's retrieval on its labelled set against evaluation.gates
    (the index is brought up to date first); `report` and `gates` of the result are the
    RetrievalReport and the gate report, exit code 1 on a failed gate."""
    proj, r = _load(recipe, env, project)
    if r.rag is None:
        raise MlopsError([Problem(None, "rag", f"mlops eval evaluates retrieval; {r.name} has no rag section")])
    from framework.runtime.rag.evaluate import evaluate_retrieval, retrieval_gates
    from framework.runtime.rag.index import index_corpus

    index_corpus(r, proj.root, proj.state_dir, console=console)
    report = evaluate_retrieval(r, proj.root, proj.state_dir, index=False)
    return RetrievalResult(recipe, report, retrieval_gates(r, report))


def evaluate_recipe(recipe: str, version: str | None = None, env: str | None = None,
                    project: Project | Path | None = None, console: Any = None) -> EvaluateResult | RetrievalResult:
    """`mlops evaluate`: a tabular recipe's registered `version` re-scored
    (evaluate_version), an LLM recipe's retrieval (evaluate, no version)."""
    proj, r = _load(recipe, env, project)
    kind = r.model.kind
    if kind != "tabular":
        if version is not None:
            message = f"{recipe} is an {kind} recipe: its retrieval is evaluated, not a version"
            raise MlopsError([Problem(None, "--version", message)])
        return evaluate(recipe, env, proj, console)
    return evaluate_version(recipe, _require_version(version, "evaluate"), env, proj)


def gate(recipe: str, version: str | None, env: str | None = None, promote: bool = False,
         project: Project | Path | None = None) -> GateDecision:
    """The recipe's gates against the version's recorded metrics; with `promote` a pass
    moves alias candidate to it. A GateDecision around
    framework.runtime.pipeline.gate.GateOutcome, exit code 1 on a failed gate."""
    from framework.runtime.pipeline.gate import gate_version

    version = _require_version(version, "gate")
    proj, r = _load(recipe, env, project)
    return GateDecision(gate_version(r, proj.state_dir, version, promote))


def smoke(recipe: str, url: str, env: str | None = None, requests: int | None = None, version: str | None = None,
          project: Project | Path | None = None) -> SmokeResult:
    """Requests built from validation rows (or the labelled questions of a RAG recipe)
    against the endpoint at `url`; a SmokeResult around
    framework.runtime.pipeline.smoke.SmokeReport, exit code 1 when it failed."""
    from framework.runtime.pipeline.smoke import DEFAULT_REQUESTS
    from framework.runtime.pipeline.smoke import smoke as run

    proj, r = _load(recipe, env, project)
    return SmokeResult(run(r, proj.root, proj.state_dir, url, requests or DEFAULT_REQUESTS, version))
