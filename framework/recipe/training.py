"""`training`: how and where the model trains; `engine` selects Ray Train or a PyTorchJob."""


import re
from typing import Annotated, Literal, Union

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from framework.recipe.base import Section
from framework.recipe.types import Duration, PositiveInt, Quantity


class Optimizer(Section):
    name: Literal["adam", "adamw", "sgd", "rmsprop"] = Field(default="adam", description="torch.optim optimizer.")
    lr: Annotated[float, Field(gt=0.0, le=10.0)] = Field(default=1e-3, description="Learning rate.")
    weight_decay: Annotated[float, Field(ge=0.0)] = Field(default=0.0, description="L2 penalty.")
    momentum: Annotated[float, Field(ge=0.0, lt=1.0)] = Field(default=0.0, description="Momentum (sgd, rmsprop).")


class EarlyStopping(Section):
    patience: PositiveInt = Field(
        default=10, description="Stop after this many epochs without the validation loss improving by min_delta."
    )
    min_delta: Annotated[float, Field(ge=0.0)] = Field(
        default=0.0, description="Smallest decrease of the validation loss that counts as an improvement."
    )


class LrSchedule(Section):
    name: Literal["plateau", "cosine", "constant"] = Field(
        default="plateau",
        description="plateau: multiply the learning rate by `factor` when more than `patience` epochs pass "
        "without a better validation loss; cosine: anneal it to 0 over training.epochs; constant: keep it.",
    )
    factor: Annotated[float, Field(gt=0.0, lt=1.0)] = Field(default=0.5, description="plateau: the reduction factor.")
    patience: Annotated[int, Field(ge=0, le=1000)] = Field(
        default=3, description="plateau: epochs allowed without a better validation loss; the next one reduces."
    )


class Checkpoint(Section):
    every_epochs: PositiveInt = Field(default=1, description="Write a checkpoint every N epochs.")
    keep: PositiveInt = Field(default=2, description="Checkpoints kept; older ones are deleted.")


class Toleration(Section):
    key: str = Field(description="Taint key tolerated.")
    operator: Literal["Equal", "Exists"] = Field(default="Equal", description="How the value is matched.")
    value: str | None = Field(default=None, description="Taint value (with operator Equal).")
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        default=None, description="Taint effect tolerated; empty matches all."
    )


class Spot(Section):
    enabled: bool = Field(default=False, description="Run workers on spot/preemptible nodes.")
    max_retries: Annotated[int, Field(ge=0, le=100)] = Field(
        default=3, description="Restarts after preemption; each resumes from the last checkpoint."
    )
    node_selector: dict[str, str] = Field(
        default_factory=dict, description="Labels selecting spot nodes (e.g. cloud.google.com/gke-spot: 'true')."
    )
    tolerations: list[Toleration] = Field(default_factory=list, description="Tolerations of the spot node taints.")


class FloatParam(Section):
    type: Literal["float"] = Field(description="A real number in [low, high].")
    low: float = Field(description="Lower bound.")
    high: float = Field(description="Upper bound.")
    log: bool = Field(default=False, description="Sample on a log scale.")

    @model_validator(mode="after")
    def _bounds(self):
        if not self.low < self.high:
            raise PydanticCustomError("bounds", "low must be below high")
        if self.log and self.low <= 0:
            raise PydanticCustomError("bounds", "a log-scale range needs low > 0")
        return self


class IntParam(Section):
    type: Literal["int"] = Field(description="An integer in [low, high].")
    low: int = Field(description="Lower bound.")
    high: int = Field(description="Upper bound.")
    step: PositiveInt = Field(default=1, description="Step between candidates.")
    log: bool = Field(default=False, description="Sample on a log scale.")

    @model_validator(mode="after")
    def _bounds(self):
        if not self.low < self.high:
            raise PydanticCustomError("bounds", "low must be below high")
        return self


class CategoricalParam(Section):
    type: Literal["categorical"] = Field(description="One of `choices`.")
    choices: list[str | int | float | bool | list[int]] = Field(min_length=1, description="Candidate values.")


SearchParam = Annotated[Union[FloatParam, IntParam, CategoricalParam], Field(discriminator="type")]
SearchKey = Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)+$")]


class Hpo(Section):
    n_trials: Annotated[int, Field(ge=1, le=10000)] = Field(default=20, description="Trials Optuna runs.")
    direction: Literal["maximize", "minimize"] = Field(default="maximize", description="Optimise the metric up or down.")
    metric: str = Field(description="Evaluation metric the trials are ranked by (one of evaluation.metrics).")
    search_space: dict[SearchKey, SearchParam] = Field(
        min_length=1,
        description="Recipe keys to tune (dotted paths such as training.optimizer.lr) and their ranges.",
    )
    max_concurrent: PositiveInt = Field(default=2, description="Trials running at once.")
    sampler: Literal["tpe", "random", "cmaes"] = Field(default="tpe", description="Optuna sampler.")
    seed: int = Field(default=0, description="Seed of the sampler.")
    timeout: Duration | None = Field(default=None, description="Stop starting trials after this long.")


_MODEL_URI = re.compile(r"^(models:/[^/@]+(/[0-9]+|@[A-Za-z0-9_-]+)|runs:/[0-9a-f]+/.+|[a-z][a-z0-9+.-]*://.+)$")


class Distillation(Section):
    teacher: Annotated[str, Field(pattern=_MODEL_URI.pattern)] = Field(
        description="MLflow model URI of the teacher, e.g. models:/churn-large@champion or runs:/<id>/model."
    )
    temperature: Annotated[float, Field(gt=0.0, le=100.0)] = Field(default=2.0, description="Softmax temperature of soft targets.")
    alpha: Annotated[float, Field(ge=0.0, le=1.0)] = Field(
        default=0.5, description="Weight of the soft-target loss; 1 - alpha weighs the hard labels."
    )


class _Training(Section):
    workers: Annotated[int, Field(ge=1, le=1024)] = Field(default=2, description="Data-parallel workers.")
    cpus_per_worker: Annotated[float, Field(gt=0, le=512)] = Field(default=1, description="CPUs reserved per worker.")
    gpus_per_worker: Annotated[float, Field(ge=0, le=16)] = Field(default=0, description="GPUs per worker (0: CPU training).")
    memory_per_worker: Quantity = Field(default="2Gi", description="Memory per worker (K8s quantity).")
    gpu_type: str | None = Field(
        default=None, description="Accelerator type the workers need (e.g. nvidia-l4, nvidia-a100-80gb)."
    )
    epochs: Annotated[int, Field(ge=1, le=100000)] = Field(
        default=100, description="Most passes over the training data (early_stopping may end sooner)."
    )
    early_stopping: EarlyStopping | None = Field(
        default_factory=EarlyStopping,
        description="Stop when the validation loss stops improving and keep the weights of its best epoch; null: "
        "train every epoch and keep the last.",
    )
    batch_size: Annotated[int, Field(ge=1, le=1048576)] = Field(default=64, description="Rows per step per worker.")
    optimizer: Optimizer = Field(default_factory=Optimizer, description="Optimizer and its settings.")
    lr_schedule: LrSchedule = Field(default_factory=LrSchedule, description="How the learning rate changes by epoch.")
    seed: int = Field(default=42, description="Seed of weights and data order.")
    checkpoint: Checkpoint = Field(default_factory=Checkpoint, description="Checkpointing, used to resume.")
    spot: Spot = Field(default_factory=Spot, description="Spot/preemptible workers.")
    timeout: Duration = Field(default="2h", description="Training is stopped after this long (activeDeadlineSeconds).")
    hpo: Hpo | None = Field(default=None, description="Optional hyper-parameter search with Optuna.")
    distillation: Distillation | None = Field(default=None, description="Optional knowledge distillation from a teacher.")


class RayHead(Section):
    cpu: Quantity = Field(default="2", description="CPU of the Ray head pod.")
    memory: Quantity = Field(default="4Gi", description="Memory of the Ray head pod.")


class RayTraining(_Training):
    engine: Literal["ray"] = Field(description="Ray Train TorchTrainer (a KubeRay RayJob on clusters).")
    head: RayHead = Field(default_factory=RayHead, description="Resources of the Ray head.")


class PytorchJobTraining(_Training):
    engine: Literal["pytorchjob"] = Field(description="A Kubeflow PyTorchJob (Master + Workers) with torchrun.")
    backend: Literal["nccl", "gloo"] | None = Field(
        default=None, description="torch.distributed backend; default nccl with GPUs, gloo without."
    )


Training = Annotated[Union[RayTraining, PytorchJobTraining], Field(discriminator="engine")]
