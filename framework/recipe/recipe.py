"""The whole recipe: every section, validated after Hydra composed and resolved it."""


from typing import Annotated

from pydantic import Field

from framework.recipe.base import Section
from framework.recipe.batch import Batch
from framework.recipe.ci import Ci
from framework.recipe.data import Data
from framework.recipe.deploy import Deploy
from framework.recipe.evaluation import Evaluation
from framework.recipe.model import Model
from framework.recipe.monitoring import Monitoring
from framework.recipe.rag import Rag
from framework.recipe.rollout import Rollout
from framework.recipe.serving import Serving
from framework.recipe.tracking import Tracking
from framework.recipe.training import Training
from framework.recipe.types import Name, RecipeName


class Recipe(Section):
    name: RecipeName = Field(description="Names the K8s objects, Ray jobs and MLflow models of the recipe.")
    description: str = Field(default="", description="What the recipe builds, for people.")
    owner: Annotated[str, Field(min_length=1)] | None = Field(default=None, description="Team or person responsible.")
    environment: Name = Field(default="dev", description="Environment set by the env overlay (dev, staging, prod).")
    data: Data | None = Field(default=None, description="Training data (required by tabular models).")
    model: Model = Field(description="What is trained or served.")
    training: Training | None = Field(default=None, description="How the model trains (required by tabular models).")
    evaluation: Evaluation = Field(description="Metrics and promotion gates.")
    serving: Serving = Field(description="How the model is served.")
    rollout: Rollout = Field(description="How a new model version replaces the current one.")
    monitoring: Monitoring = Field(default_factory=Monitoring, description="Metrics, drift, alerts, dashboard.")
    ci: Ci = Field(default_factory=Ci, description="Generated CI pipeline.")
    deploy: Deploy = Field(description="Kubernetes deployment settings.")
    tracking: Tracking = Field(default_factory=Tracking, description="MLflow tracking and registry.")
    rag: Rag | None = Field(default=None, description="Retrieval-augmented generation (LLM recipes).")
    batch: Batch = Field(default_factory=Batch, description="Offline scoring with `mlops batch`.")

    @property
    def registered_model(self) -> str:
        return self.tracking.registered_model or self.name

    @property
    def experiment(self) -> str:
        return self.tracking.experiment or self.name
