"""`tracking`: MLflow experiment tracking and model registry."""


from pydantic import Field

from framework.recipe.base import Section
from framework.recipe.types import Name


class Tracking(Section):
    uri: str | None = Field(
        default=None, description="MLflow tracking URI; none uses the embedded sqlite store under .mlops/."
    )
    experiment: str | None = Field(default=None, description="MLflow experiment; default the recipe name.")
    registered_model: Name | None = Field(default=None, description="Registry model name; default the recipe name.")
