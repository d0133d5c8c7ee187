"""`tracking`: MLflow experiment tracking and model registry, and Weights & Biases beside it."""

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, WithJsonSchema, field_validator, model_validator
from pydantic_core import PydanticCustomError

from framework.recipe.base import Section
from framework.recipe.types import Name, SecretRef

Backend = Literal["mlflow", "wandb"]

# What the W&B server accepts in a project or entity name (its UI and URLs split on the rest).
_WANDB_NAME_RE = re.compile(r"^[^/\\#?%:\s]{1,128}$")


def _wandb_name(value: str) -> str:
    if not _WANDB_NAME_RE.match(value):
        raise PydanticCustomError("wandb_name", f"'{value}' is not a W&B name: 1 to 128 characters, "
                                  "none of / \\ # ? % : or spaces")
    return value


WandbName = Annotated[
    str, AfterValidator(_wandb_name), WithJsonSchema({"type": "string", "pattern": _WANDB_NAME_RE.pattern})
]


class Wandb(Section):
    """Where the W&B mirror of every MLflow run goes (`tracking.backends` lists wandb)."""

    project: WandbName | None = Field(default=None, description="W&B project; default the recipe name.")
    entity: WandbName | None = Field(
        default=None, description="W&B team or user owning the project; default the API key's own entity."
    )
    mode: Literal["offline", "online"] = Field(
        default="offline",
        description="offline: run files under <state dir>/wandb/ (upload them later with `wandb sync`); "
                    "online: stream to the W&B server, logged in with api_key.",
    )
    api_key: SecretRef | None = Field(
        default=None,
        description="Kubernetes Secret holding the W&B API key (mode online only): the job reads it as WANDB_API_KEY.",
    )


class Tracking(Section):
    # An empty URI is refused rather than read as "embedded": it is what an unset variable
    # in `${oc.env:MLFLOW_TRACKING_URI,...}` gives, and a CI job must not register into a
    # throwaway store on its runner.
    uri: str | None = Field(
        default=None, description="MLflow tracking URI; none uses the embedded sqlite store under .mlops/."
    )
    experiment: str | None = Field(default=None, description="MLflow experiment; default the recipe name.")
    registered_model: Name | None = Field(default=None, description="Registry model name; default the recipe name.")
    backends: list[Backend] = Field(
        default_factory=lambda: ["mlflow"],
        json_schema_extra={"uniqueItems": True, "contains": {"const": "mlflow"}},
        description="Where runs are tracked: mlflow (always: it is the model registry), plus wandb to mirror every "
                    "run's params, metrics, gate table and model version to Weights & Biases (the wandb extra).",
    )
    wandb: Wandb | None = Field(
        default=None, description="Weights & Biases settings; filled with the defaults when backends lists wandb."
    )

    @model_validator(mode="before")
    @classmethod
    def _wandb_defaults(cls, data: Any) -> Any:
        # The resolved recipe (what the job reads, what `mlops show` prints) spells out the
        # W&B settings in effect, as it does every other default.
        backends = data.get("backends") if isinstance(data, dict) else None
        if isinstance(backends, list) and "wandb" in backends and data.get("wandb") is None:
            return {**data, "wandb": {}}
        return data

    @field_validator("uri")
    @classmethod
    def _not_empty(cls, uri: str | None) -> str | None:
        if uri is not None and not uri.strip():
            raise PydanticCustomError("empty", "is empty (an unset variable such as MLFLOW_TRACKING_URI?): "
                                      "give the server's URI, or null for the embedded store")
        return uri

    @field_validator("backends")
    @classmethod
    def _mlflow_once_each(cls, backends: list[str]) -> list[str]:
        twice = sorted({b for b in backends if backends.count(b) > 1})
        if twice:
            raise PydanticCustomError("backends", f"lists {', '.join(twice)} more than once")
        if "mlflow" not in backends:
            raise PydanticCustomError("backends", "must include mlflow: it is the model registry that serving, "
                                      "rollout and lineage read (write [mlflow, wandb] to add W&B)")
        return backends
