"""`deploy`: where and as whom the system runs on Kubernetes."""


from typing import Annotated, Literal

from pydantic import Field

from framework.recipe.base import Section
from framework.recipe.training import Toleration
from framework.recipe.types import EnvVarName, ImageRef, Name, SecretRef

LabelKey = Annotated[str, Field(pattern=r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")]
LabelValue = Annotated[str, Field(pattern=r"^(|[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)$")]


class Deploy(Section):
    target: Literal["kubernetes"] = Field(default="kubernetes", description="Where the system is deployed.")
    namespace: Name = Field(default="default", description="Kubernetes namespace of every object.")
    image: ImageRef = Field(description="Image with this framework installed; runs training, drift checks and Ray jobs.")
    service_account: Name = Field(default="mlops", description="Service account the pods run as.")
    node_selector: dict[LabelKey, LabelValue] = Field(default_factory=dict, description="Labels the pods' nodes must have.")
    tolerations: list[Toleration] = Field(default_factory=list, description="Taints the pods tolerate.")
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict, description="Extra labels on every object.")
    secrets: dict[EnvVarName, SecretRef] = Field(
        default_factory=dict,
        description="Environment variables filled from Kubernetes Secrets: references only, never values.",
    )
    gpu_type: str | None = Field(
        default=None,
        description="Accelerator type of this environment's GPU nodes; GPU sections refer to it as ${deploy.gpu_type}.",
    )
    istio: bool = Field(default=True, description="Route traffic with Istio (needed by canary, shadow, blue_green).")
