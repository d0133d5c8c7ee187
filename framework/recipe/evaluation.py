"""`evaluation`: metrics computed on the validation split and the gates they must pass.

Gates decide promotion everywhere (offline, CI, rollout analysis). Besides the named
gates, any `min_<metric>` / `max_<metric>` key sets a threshold on a metric listed in
`metrics` (checked in checks/evaluation.py, which knows the metric list).
"""


from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from framework.recipe.base import Section
from framework.recipe.types import PositiveInt

CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")
REGRESSION_METRICS = ("mse", "rmse", "mae", "r2")
RETRIEVAL_METRICS = ("recall_at_k", "mrr")
METRICS = CLASSIFICATION_METRICS + REGRESSION_METRICS + RETRIEVAL_METRICS
Metric = Literal[
    "accuracy", "precision", "recall", "f1", "roc_auc", "log_loss",
    "mse", "rmse", "mae", "r2",
    "recall_at_k", "mrr",
]
THRESHOLD_KEY = r"^(min|max)_[a-z0-9_]+$"


class Fairness(Section):
    attribute: str = Field(description="Data column whose groups are compared (e.g. gender).")
    max_disparity: Annotated[float, Field(ge=0.0, le=1.0)] = Field(
        default=0.1, description="Largest allowed gap of the fairness metric between groups."
    )
    metric: Literal["demographic_parity", "equal_opportunity"] = Field(
        default="demographic_parity",
        description="Positive-prediction rate (demographic parity) or true-positive rate (equal opportunity).",
    )


class Gates(Section):
    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "patternProperties": {THRESHOLD_KEY: {"type": ["number", "null"]}},
            "additionalProperties": False,
        },
    )
    __pydantic_extra__: dict[str, float | None]  # null switches an inherited gate off

    max_latency_p95_ms: Annotated[float, Field(gt=0)] | None = Field(
        default=None, description="p95 latency at batch 1 on ONNX Runtime, in milliseconds."
    )
    max_model_size_mb: Annotated[float, Field(gt=0)] | None = Field(
        default=None, description="Largest allowed size of the exported model file, in MB."
    )
    fairness: Fairness | None = Field(default=None, description="Largest allowed disparity between groups.")
    onnx_parity_atol: Annotated[float, Field(gt=0, le=1)] | None = Field(
        default=1e-4, description="Largest absolute difference between torch and ONNX Runtime outputs."
    )

    def thresholds(self) -> dict[str, float]:
        """`min_<metric>` / `max_<metric>` gates by key (switched-off ones left out)."""
        return {k: v for k, v in (self.__pydantic_extra__ or {}).items() if v is not None}


class RetrievalEvaluation(Section):
    questions: str = Field(
        description="Labelled set (JSONL/YAML: question + the source document that answers it)."
    )
    k: PositiveInt = Field(default=5, description="Cut-off of recall@k.")


class EvaluationDataset(Section):
    uri: str = Field(
        min_length=1,
        description="Path (relative to the project root) or URI (file://, s3://, gs://) of held-out rows laid out like data.source.",
    )
    format: Literal["csv", "parquet"] = Field(default="csv", description="File format of `uri`.")


class Evaluation(Section):
    metrics: list[Metric] = Field(min_length=1, description="Metrics computed on the validation split.")
    gates: Gates = Field(default_factory=Gates, description="Thresholds a model must pass to be promoted.")
    retrieval: RetrievalEvaluation | None = Field(
        default=None, description="Retrieval evaluation of a RAG recipe (recall@k, MRR)."
    )
    dataset: EvaluationDataset | None = Field(
        default=None,
        description="Held-out data that `mlops evaluate` scores registered versions on (the CI pipeline's evaluate "
                    "job), instead of the validation split; training and its own gates use the validation split.",
    )
