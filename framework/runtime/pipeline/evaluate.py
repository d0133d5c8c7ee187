"""`mlops evaluate RECIPE --version N`: re-score a registered version, as the registry
holds it, on the validation split of `data.source` (the same rows training held out)
or on `evaluation.dataset`, and record what was measured.

Measured: every metric of `evaluation.metrics`, the fairness disparity (when gated),
the served file's size and, for an ONNX model, its p95 latency at batch 1. Recorded
as an MLflow run in the recipe's experiment (tags `mlops.kind=evaluate`,
`mlops.model_version=N`) that `mlops gate` reads, and as the version's tag
`mlops.evaluation_run`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from framework.errors import MlopsError, Problem

KIND_TAG = "mlops.kind"
KIND = "evaluate"
VERSION_TAG = "mlops.model_version"
DATASET_TAG = "mlops.dataset"
VERSION_EVALUATION_TAG = "mlops.evaluation_run"
OBSERVED_METRIC = {  # gate name -> metric name of the evaluation run
    "max_latency_p95_ms": "latency_p95_ms",
    "max_model_size_mb": "model_size_mb",
    "fairness.max_disparity": "fairness_disparity",
}


@dataclass
class VersionEvaluation:
    recipe: str
    env: str
    version: str
    dataset: str  # what was scored
    rows: int
    metrics: dict[str, float]
    observed: dict[str, float | None] = field(default_factory=dict)  # gate name -> value
    run_id: str | None = None
    tracking_uri: str | None = None

    def rows_table(self) -> list[tuple[str, str]]:
        rows = [(name, f"{value:.4f}") for name, value in self.metrics.items()]
        rows += [(OBSERVED_METRIC[k], "-" if v is None else f"{v:.4g}") for k, v in self.observed.items()]
        return rows

    def to_markdown(self) -> str:
        from framework.runtime.github_actions import markdown_table

        return (f"### Evaluation of {self.recipe} version {self.version}\n\n{self.rows} rows of `{self.dataset}`; "
                f"MLflow run `{self.run_id}`\n\n" + markdown_table(("metric", "value"), self.rows_table()))


def validation_rows(recipe, root: Path):
    """The validation split of data.source: the rows training held out."""
    from framework.runtime.training import data, splitting

    _, validation = splitting.split(recipe, data.load_table(recipe, root))
    return validation.reset_index(drop=True)


def rows_to_score(recipe, root: Path):
    """(table, description): evaluation.dataset, else the validation split of data.source."""
    from framework.runtime.training import data

    dataset = recipe.evaluation.dataset
    if dataset is not None:
        table = data.load_table(recipe, root, source=dataset, key="evaluation.dataset")
        if not len(table):
            raise MlopsError([Problem(None, "evaluation.dataset", f"{dataset.uri} has no rows")])
        return table.reset_index(drop=True), dataset.uri
    return validation_rows(recipe, root), f"{recipe.data.source.uri} (validation split)"


def evaluate_version(recipe, root: Path, state_dir: Path, version: str) -> VersionEvaluation:
    from framework.runtime.training import gates, metrics_eval
    from framework.runtime.registered import open_version

    if recipe.model.kind != "tabular":
        raise MlopsError([Problem(None, "--version", f"{recipe.name} is an {recipe.model.kind} recipe: "
                                  "`mlops evaluate` without --version evaluates its retrieval")])
    registered = open_version(recipe, state_dir, version)
    table, described = rows_to_score(recipe, root)
    outputs = registered.predict(table)
    targets = registered.pipeline.targets(table)
    metrics = metrics_eval.evaluate(recipe, outputs, targets)
    disparity = None
    fairness = recipe.evaluation.gates.fairness
    if fairness is not None:
        disparity, _ = metrics_eval.fairness_disparity(recipe, outputs, targets, table[fairness.attribute])
    onnx = registered.model_path if registered.model_path.suffix == ".onnx" else None
    observed = gates.observations(recipe, onnx, registered.model_path.stat().st_size, disparity, None)
    observed = {k: v for k, v in observed.items() if k in OBSERVED_METRIC and v is not None}
    result = VersionEvaluation(recipe.name, recipe.environment, registered.version, described, len(table), metrics, observed)
    _record(recipe, root, state_dir, registered, result)
    return result


def _record(recipe, root: Path, state_dir: Path, registered, result: VersionEvaluation) -> None:
    from framework.runtime import tracking

    run_name = f"{recipe.name}-{recipe.environment}-v{registered.version}-evaluate"
    with tracking.Tracker(recipe, state_dir, root=root, run_name=run_name) as run:
        run.set_tags({KIND_TAG: KIND, VERSION_TAG: registered.version, DATASET_TAG: result.dataset,
                      "mlops.model_run": registered.run_id})
        values = dict(result.metrics)
        values.update({OBSERVED_METRIC[k]: v for k, v in result.observed.items()})
        run.log_metrics(0, values)
        run.log_dict({"version": registered.version, "dataset": result.dataset, "rows": result.rows,
                      "metrics": result.metrics, "observed": result.observed}, "evaluation/evaluation.json")
        result.run_id, result.tracking_uri = run.run_id, run.uri
    tracking.client(run.uri).set_model_version_tag(recipe.registered_model, registered.version,
                                                    VERSION_EVALUATION_TAG, result.run_id)


__all__ = ["VersionEvaluation", "evaluate_version", "rows_to_score", "KIND_TAG", "VERSION_TAG", "OBSERVED_METRIC"]
