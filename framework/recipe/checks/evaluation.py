"""Rules mainly about `evaluation`: metrics that fit the model's task, gates that name a
metric, the fairness attribute and held-out dataset that need data columns, and the
retrieval evaluation that needs a rag section.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from framework.recipe.checks.base import Violation, check
from framework.recipe.evaluation import CLASSIFICATION_METRICS, REGRESSION_METRICS, RETRIEVAL_METRICS
from framework.recipe.model import LlmModel
from framework.recipe.recipe import Recipe
from framework.recipe.suggest import did_you_mean


def _task_metrics(r: Recipe) -> tuple[str, tuple[str, ...]]:
    if isinstance(r.model, LlmModel):
        return "an llm model (retrieval)", RETRIEVAL_METRICS
    if r.model.task == "regression":
        return "model.task regression", REGRESSION_METRICS
    return "model.task classification", CLASSIFICATION_METRICS


@check
def metrics_fit_task(r: Recipe) -> Iterator[Violation]:
    what, allowed = _task_metrics(r)
    for index, metric in enumerate(r.evaluation.metrics):
        if metric not in allowed:
            yield Violation(
                (f"evaluation.metrics.{index}", "model.kind"),
                f"evaluation.metrics.{index} ({metric}) does not apply to {what} (model.kind {r.model.kind}); "
                f"use {', '.join(allowed)}",
            )


@check
def gates_name_metrics(r: Recipe) -> Iterator[Violation]:
    for key in r.evaluation.gates.__pydantic_extra__ or {}:
        match = re.match(r"^(min|max)_(.+)$", key)
        metric = match.group(2) if match else None
        if metric is None or metric not in r.evaluation.metrics:
            candidates = [f"{b}_{m}" for m in r.evaluation.metrics for b in ("min", "max")]
            candidates += ["max_latency_p95_ms", "max_model_size_mb", "fairness", "onnx_parity_atol"]
            yield Violation(
                (f"evaluation.gates.{key}", "evaluation.metrics"),
                f"evaluation.gates.{key} is not a gate{did_you_mean(key, candidates)}: a threshold gate is min_<metric> or "
                f"max_<metric> for a metric in evaluation.metrics ({', '.join(r.evaluation.metrics)})",
            )


@check
def fairness_attribute_is_a_column(r: Recipe) -> Iterator[Violation]:
    fairness = r.evaluation.gates.fairness
    if fairness is None:
        return
    if r.data is None:
        yield Violation(("evaluation.gates.fairness.attribute", "data"), "evaluation.gates.fairness needs a data section")
        return
    columns = r.data.columns()
    if fairness.attribute not in columns or fairness.attribute == r.data.target:
        yield Violation(
            ("evaluation.gates.fairness.attribute", "data.extra_columns"),
            f"evaluation.gates.fairness.attribute '{fairness.attribute}' is not a data column: add it to "
            f"data.extra_columns or data.features{did_you_mean(fairness.attribute, columns)}",
        )


@check
def evaluation_dataset_needs_data(r: Recipe) -> Iterator[Violation]:
    if r.evaluation.dataset is not None and r.data is None:
        yield Violation(("evaluation.dataset", "data"), "evaluation.dataset holds rows laid out like data.source: "
                        "it needs a data section (a tabular recipe)")


@check
def retrieval_eval_needs_rag(r: Recipe) -> Iterator[Violation]:
    if r.evaluation.retrieval is not None and r.rag is None:
        yield Violation(("evaluation.retrieval", "rag"), "evaluation.retrieval needs a rag section")
    if r.rag is not None and r.evaluation.retrieval is not None and r.evaluation.retrieval.k > r.rag.retriever.fetch_k:
        yield Violation(
            ("evaluation.retrieval.k", "rag.retriever.fetch_k"),
            f"evaluation.retrieval.k ({r.evaluation.retrieval.k}) must be <= rag.retriever.fetch_k ({r.rag.retriever.fetch_k})",
        )
