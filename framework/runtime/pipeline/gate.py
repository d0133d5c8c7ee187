"""`mlops gate RECIPE --version N`: the recipe's gates against what was recorded for a
registered version; the CI pipeline's promotion decision.

What is read: the metrics of the version's latest `mlops evaluate` run (the version's
tag `mlops.evaluation_run`), else the validation metrics its training run logged; and
for the observed gates (latency, size, fairness, ONNX parity) the evaluation's values,
else the training run's `evaluation/gates.json`. Nothing is re-measured here.

The version is tagged `mlops.gate=pass|fail`. A failed gate exits 1 and moves no alias;
a pass moves none either unless asked to promote (`--promote`, the pipeline on pushes):
then the version gets alias `candidate` (and `champion` too for rollout direct), as a
local apply's training would have given it.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from framework.errors import MlopsError, Problem

GATE_TAG = "mlops.gate"
TRAINING_GATES = "evaluation/gates.json"  # logged by the training run (train.py)


@dataclass
class GateOutcome:
    recipe: str
    env: str
    version: str
    report: object  # framework.runtime.training.gates.GateReport
    sources: list[str] = field(default_factory=list)  # the runs read, described
    promoted: list[str] = field(default_factory=list)  # aliases moved (pass only)
    tracking_uri: str = ""


def _training_observations(client, run_id: str, uri: str) -> dict[str, float | None]:
    """Observed gate values the training run recorded in evaluation/gates.json."""
    from mlflow.artifacts import download_artifacts
    from mlflow.exceptions import MlflowException

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = download_artifacts(run_id=run_id, artifact_path=TRAINING_GATES, dst_path=tmp, tracking_uri=uri)
            rows = json.loads(Path(local).read_text(encoding="utf-8")).get("gates", [])
        except (MlflowException, OSError, ValueError):
            return {}
    return {row["name"]: row.get("observed") for row in rows if "name" in row}


def recorded(recipe, client, model_version, uri: str) -> tuple[dict[str, float], dict[str, float | None], list[str]]:
    """(metrics, observed gate values, sources) recorded for a version."""
    from mlflow.exceptions import MlflowException

    from framework.runtime.training.gates import OBSERVED_GATES
    from framework.runtime.pipeline.evaluate import OBSERVED_METRIC, VERSION_EVALUATION_TAG

    names = list(recipe.evaluation.metrics)
    training = client.get_run(model_version.run_id) if model_version.run_id else None
    metrics: dict[str, float] = {}
    observed: dict[str, float | None] = {}
    sources: list[str] = []
    if training is not None:
        metrics = {m: training.data.metrics[f"val_{m}"] for m in names if f"val_{m}" in training.data.metrics}
        observed = {k: v for k, v in _training_observations(client, training.info.run_id, uri).items() if k in OBSERVED_GATES}
        if metrics or observed:
            sources.append(f"training run {training.info.run_id}")
    evaluation_id = model_version.tags.get(VERSION_EVALUATION_TAG)
    if evaluation_id:
        try:
            evaluation = client.get_run(evaluation_id)
        except MlflowException:
            evaluation = None
        if evaluation is not None:
            found = evaluation.data.metrics
            metrics = {m: found[m] for m in names if m in found} or metrics
            observed.update({gate: found[name] for gate, name in OBSERVED_METRIC.items() if name in found})
            sources.insert(0, f"evaluation run {evaluation_id}")
    return metrics, observed, sources


def gate_version(recipe, state_dir: Path, version: str, promote: bool = False) -> GateOutcome:
    from framework.runtime import tracking
    from framework.runtime.training.gates import check_gates
    from framework.runtime.registered import model_version, tracking_uri_or_fail

    if recipe.model.kind != "tabular":
        raise MlopsError([Problem(None, "--version", f"{recipe.name} is an {recipe.model.kind} recipe: its gates are "
                                  f"checked by `mlops evaluate {recipe.name}` (retrieval)")])
    uri = tracking_uri_or_fail(recipe, state_dir)
    client, found = model_version(recipe, version, uri)
    version = str(found.version)
    metrics, observed, sources = recorded(recipe, client, found, uri)
    if not metrics and not any(v is not None for v in observed.values()):
        message = (f"version {version} of '{recipe.registered_model}' has no recorded metrics (run {found.run_id or '-'} "
                   f"logged none): run `mlops evaluate {recipe.name} --version {version}` first")
        raise MlopsError([Problem(None, "--version", message)])
    report = check_gates(recipe, metrics, observed)
    client.set_model_version_tag(recipe.registered_model, version, GATE_TAG, "pass" if report.passed else "fail")
    outcome = GateOutcome(recipe.name, recipe.environment, version, report, sources, tracking_uri=uri)
    if report.passed and promote:
        outcome.promoted = tracking.promote(recipe.registered_model, version, recipe.rollout.strategy, uri=uri)
    return outcome


__all__ = ["GateOutcome", "gate_version", "recorded", "GATE_TAG"]
