"""`tracking`: MLflow experiment tracking and model registry."""


from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from framework.recipe.base import Section
from framework.recipe.types import Name


class Tracking(Section):
    # An empty URI is refused rather than read as "embedded": it is what an unset variable
    # in `${oc.env:MLFLOW_TRACKING_URI,...}` gives, and a CI job must not register into a
    # throwaway store on its runner.
    uri: str | None = Field(
        default=None, description="MLflow tracking URI; none uses the embedded sqlite store under .mlops/."
    )
    experiment: str | None = Field(default=None, description="MLflow experiment; default the recipe name.")
    registered_model: Name | None = Field(default=None, description="Registry model name; default the recipe name.")

    @field_validator("uri")
    @classmethod
    def _not_empty(cls, uri: str | None) -> str | None:
        if uri is not None and not uri.strip():
            raise PydanticCustomError("empty", "is empty (an unset variable such as MLFLOW_TRACKING_URI?): "
                                      "give the server's URI, or null for the embedded store")
        return uri
