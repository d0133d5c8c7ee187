"""The Python API of the commands a CI pipeline chains (re-exported by framework.api):
`check_data` -> (training) -> `evaluate_version` -> `gate` -> (deploy) -> `smoke`.

Each returns a result object or raises an `MlopsError`; nothing here prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from framework.errors import MlopsError, Problem
from framework.project import Project

__all__ = ["DataCheck", "check_data", "evaluate_version", "gate", "smoke"]


@dataclass(frozen=True)
class DataCheck:
    recipe: str
    env: str
    report: Any  # framework.runtime.training.data.DataReport, or a RAG DocumentsReport
    report_dir: Path

    @property
    def passed(self) -> bool:
        return self.report.passed


def _load(recipe: str, env: str | None, project: Project | Path | None):
    from framework.api import _project, load_recipe

    proj = _project(project)
    return proj, load_recipe(recipe, env, (), proj).recipe


def check_data(recipe: str, env: str | None = None, report_dir: Path | None = None,
               project: Project | Path | None = None) -> DataCheck:
    """Load the recipe's data and run its expectations (a RAG recipe: load and split its
    documents); the report (JSON, HTML) goes to report_dir, default
    `.mlops/reports/<recipe>/<env>/data/`. Raises DataError when the data cannot be read;
    a failed expectation or data check (the target, nulls) is in the returned report
    (`passed` False)."""
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


def evaluate_version(recipe: str, version: str, env: str | None = None, project: Project | Path | None = None):
    """Re-score a registered version on the validation split (or evaluation.dataset) and
    record it in MLflow; returns framework.runtime.pipeline.evaluate.VersionEvaluation."""
    from framework.runtime.pipeline.evaluate import evaluate_version as run

    proj, r = _load(recipe, env, project)
    return run(r, proj.root, proj.state_dir, str(version))


def gate(recipe: str, version: str, env: str | None = None, promote: bool = False,
         project: Project | Path | None = None):
    """The recipe's gates against the version's recorded metrics; with `promote` a pass
    moves alias candidate to it. Returns framework.runtime.pipeline.gate.GateOutcome."""
    from framework.runtime.pipeline.gate import gate_version

    proj, r = _load(recipe, env, project)
    return gate_version(r, proj.state_dir, str(version), promote)


def smoke(recipe: str, url: str, env: str | None = None, requests: int | None = None, version: str | None = None,
          project: Project | Path | None = None):
    """Requests built from validation rows (or the labelled questions of a RAG recipe)
    against the endpoint at `url`; returns framework.runtime.pipeline.smoke.SmokeReport."""
    from framework.runtime.pipeline.smoke import DEFAULT_REQUESTS
    from framework.runtime.pipeline.smoke import smoke as run

    proj, r = _load(recipe, env, project)
    return run(r, proj.root, proj.state_dir, url, requests or DEFAULT_REQUESTS, version)


def batch(recipe: str, input_uri: str, output_uri: str, env: str | None = None, version: str | None = None,
          alias: str | None = None, overwrite: bool = False, project: Project | Path | None = None, console: Any = None,
          engine: str = "ray", master: str | None = None, address: str | None = None, head_shares_disk: bool = False):
    """Score `input_uri` (a csv/parquet file or folder) with a registered version of the
    recipe's model (default: the champion) on an embedded Ray Data (engine "ray") or on
    Spark (engine "spark", `master` default local[*]), or as a job on the Ray cluster at
    `address`; write parquet parts, a manifest and the model's name and version to
    `output_uri`."""
    proj, r = _load(recipe, env, project)
    if address is None:
        from framework.runtime.batch.run import run_batch

        return run_batch(r, proj.root, proj.state_dir, input_uri, output_uri, version=version, alias=alias,
                         overwrite=overwrite, engine=engine, master=master, console=console)
    if engine != "ray" or master is not None:
        raise MlopsError([Problem(None, "--address", "runs the batch job on a Ray cluster: it takes --engine ray "
                                  "(without --master)")])
    import time

    from framework.api import generate
    from framework.runtime.batch.cluster import batch_on_cluster
    from framework.runtime.batch.parts import read_result

    began = time.perf_counter()
    generate([recipe], env=env, project=proj)  # the job reads the resolved recipe generate writes
    batch_on_cluster(r, proj.root, proj.generated_dir / r.name / r.environment, proj.state_dir, input_uri, output_uri,
                     address, version=version, alias=alias, overwrite=overwrite, head_shares_disk=head_shares_disk)
    result = read_result(output_uri)
    result.seconds = time.perf_counter() - began
    return result
