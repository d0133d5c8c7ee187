"""`batch`: how `mlops batch` scores a table offline (Ray Data actors; rows per model call
on both engines) and, with `input` and `output`, the batch job `generate` writes for a
cluster (a KubeRay RayJob, and a CronJob that starts it on `schedule`)."""


import re
from typing import Annotated

from pydantic import AfterValidator, Field, WithJsonSchema
from pydantic_core import PydanticCustomError

from framework.recipe.base import Section
from framework.recipe.training import RayHead
from framework.recipe.types import Cron, Duration, PositiveInt, Quantity

# MLflow's own rules for a registered model alias (mlflow/utils/validation.py): word
# characters and '-', at most 255; `latest` and `v<N>` are reserved for versions.
_ALIAS_RE = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_VERSION_ALIAS_RE = re.compile(r"^[vV][0-9]+$")


def _alias(value: str) -> str:
    if not _ALIAS_RE.match(value):
        raise PydanticCustomError(
            "alias", f"'{value}' is not an MLflow alias: use letters, digits, '_' and '-' (at most 255 characters)"
        )
    if value.lower() == "latest" or _VERSION_ALIAS_RE.match(value):
        raise PydanticCustomError(
            "alias", f"'{value}' is reserved by MLflow for versions (latest, v<N>): name an alias such as champion"
        )
    return value


Alias = Annotated[str, AfterValidator(_alias), WithJsonSchema({"type": "string", "pattern": _ALIAS_RE.pattern})]
Uri = Annotated[str, Field(min_length=1)]


class Batch(Section):
    batch_size: Annotated[int, Field(ge=1, le=1048576)] = Field(
        default=8192, description="Rows per model call (a Ray Data batch; on Spark, an Arrow batch)."
    )
    actors: PositiveInt = Field(
        default=1,
        description="Scoring actors of the Ray engine (one ONNX Runtime session each), at most one per CPU. On a "
        "cluster: one worker pod each.",
    )
    cpus_per_actor: Annotated[float, Field(gt=0, le=512)] = Field(default=1, description="CPUs reserved per actor.")
    memory_per_actor: Quantity = Field(
        default="2Gi", description="Memory of each actor's worker pod in the batch RayJob (ray/batch-rayjob.yaml)."
    )
    input: Uri | None = Field(
        default=None,
        description="What the batch RayJob scores: a csv/parquet file or folder the cluster can read "
        "(s3://bucket/path, gs://bucket/path). With `output`, `generate` writes ray/batch-rayjob.yaml.",
    )
    output: Uri | None = Field(
        default=None,
        description="Folder the batch RayJob writes the scored parquet parts to (s3://bucket/path, gs://bucket/path); "
        "each run replaces what it holds.",
    )
    alias: Alias = Field(default="champion", description="Registry alias of the version the batch RayJob scores with.")
    schedule: Cron | None = Field(
        default=None,
        description="When the batch RayJob runs (cron, UTC): a CronJob (k8s/batch-cronjob.yaml) starts it; null: "
        "only by hand (`kubectl create -f ray/batch-rayjob.yaml`). Needs `input` and `output`.",
    )
    timeout: Duration = Field(default="2h", description="The batch RayJob is stopped after this long (activeDeadlineSeconds).")
    head: RayHead = Field(
        default_factory=RayHead,
        description="Resources of the batch RayJob's Ray head: the driver, which writes the parts, and Ray Data's reads.",
    )

    @property
    def on_cluster(self) -> bool:
        """Whether the recipe asks for the batch RayJob (checks/batch.py: only tabular recipes may)."""
        return self.input is not None and self.output is not None
