"""`ci`: the generated GitHub Actions pipeline of a recipe."""


from typing import Annotated, Literal

from pydantic import Field

from framework.recipe.base import Section
from framework.recipe.types import Name

RunnerLabel = Annotated[str, Field(min_length=1, max_length=100)]


class Runners(Section):
    default: list[RunnerLabel] = Field(default_factory=lambda: ["ubuntu-latest"], min_length=1, description="Labels of the default runner.")
    gpu: list[RunnerLabel] | None = Field(
        default=None, description="Labels of a GPU runner for training jobs; none trains on the default runner."
    )


class Environment(Section):
    name: Name = Field(description="GitHub environment name.")
    approval: bool = Field(default=False, description="Deployments wait for a reviewer (environment protection rule).")
    url: str | None = Field(default=None, description="URL shown on the deployment.")
    endpoint: Annotated[str, Field(pattern=r"^https?://[^\s/]+(/\S*)?$")] | None = Field(
        default=None,
        description="Base URL of the model server in this environment, which the smoke test sends requests to; "
                    "when null the pipeline reads the repository variable MLOPS_<NAME>_ENDPOINT (e.g. MLOPS_STAGING_ENDPOINT).",
    )


class Ci(Section):
    provider: Literal["github"] = Field(default="github", description="CI system the workflows are generated for.")
    paths: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list, description="Path filters: changes here trigger the recipe's pipeline."
    )
    branches: list[str] = Field(default_factory=lambda: ["main"], description="Branches whose pushes deploy.")
    runners: Runners = Field(default_factory=Runners, description="Runner labels.")
    python_version: Annotated[str, Field(pattern=r"^3\.[0-9]+$")] = Field(default="3.11", description="Python of the jobs.")
    environments: list[Environment] = Field(
        default_factory=lambda: [Environment(name="staging"), Environment(name="production", approval=True)],
        description="Deployment environments, in promotion order.",
    )
