"""The building blocks of the generated GitHub workflows (github.py): the project paths,
job names and timeouts, the variables and secrets the jobs read, the actions pinned by
commit SHA, and the steps, runners and expressions every job is made of."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from framework.recipe.types import duration_seconds
from framework.contracts.workflows import workflow_file

# Project defaults ([tool.mlops] recipes_dir / workflows_dir); the recipe does not carry
# the project's settings, so path filters assume the defaults.
RECIPES_DIR = "recipes"
WORKFLOWS_DIR = ".github/workflows"
DOCKERFILE = "Dockerfile"

# The regenerate workflow is the same for every recipe, so it reads no recipe field.
REGENERATE_BRANCHES = ("main",)
REGENERATE_PYTHON = "3.11"
REGENERATE_RUNNER = "ubuntu-latest"

# Overlay each job composes with (`--env`): recipes/env/<overlay>.yaml.
STAGING_OVERLAY = "staging"
PRODUCTION_OVERLAY = "prod"

TABULAR_JOBS = ("build-image", "validate-data", "train", "evaluate", "quality-gate", "deploy-staging", "smoke-test",
                "deploy-production")
RAG_JOBS = ("build-image", "validate-data", "evaluate", "deploy-staging", "smoke-test", "deploy-production")
JOB_ORDER = TABULAR_JOBS  # the most any recipe has, in the order they run
DEPLOY_JOBS = ("deploy-staging", "smoke-test", "deploy-production")

TIMEOUT_MINUTES = {
    "build-image": 60,
    "validate-data": 30,
    "evaluate": 30,
    "quality-gate": 15,
    "deploy-staging": 60,
    "smoke-test": 15,
    "deploy-production": 60,
}
TRAIN_TIMEOUT_DEFAULT = 60
TRAIN_TIMEOUT_SETUP = 30  # checkout, install (torch, ray) and job submission
JOB_TIMEOUT_MAX = 360  # GitHub-hosted runners stop jobs after 6 hours

# Repository variables the jobs read (documented in README.md; listed for actionlint).
VAR_RAY_ADDRESS = "RAY_ADDRESS"
VAR_TRACKING_URI = "MLFLOW_TRACKING_URI"
# Secrets besides deploy.secrets: the Ray job API's token, the cluster of each GitHub
# environment, and a registry login other than ghcr.io's GITHUB_TOKEN.
SECRET_RAY_TOKEN = "RAY_AUTH_TOKEN"
SECRET_KUBECONFIG = "KUBECONFIG"
SECRET_REGISTRY_USER = "REGISTRY_USERNAME"
SECRET_REGISTRY_PASSWORD = "REGISTRY_PASSWORD"
REPORT_DIR = "mlops-reports/data"


@dataclass(frozen=True)
class Action:
    repo: str
    sha: str  # full commit SHA of the release tag
    tag: str

    @property
    def uses(self) -> str:
        return f"{self.repo}@{self.sha}"


# Release tags resolved to their commits (see tests/targets/test_github.py).
CHECKOUT = Action("actions/checkout", "08c6903cd8c0fde910a37f88322edcfb5dd907a8", "v5.0.0")
SETUP_PYTHON = Action("actions/setup-python", "e797f83bcb11b83ae66e0230d6156d7c80228e7c", "v6.0.0")
UPLOAD_ARTIFACT = Action("actions/upload-artifact", "ea165f8d65b6e75b540449e92b4886f43607fa02", "v4.6.2")
SETUP_BUILDX = Action("docker/setup-buildx-action", "e468171a9de216ec08956ac3ada2f0791b6bd435", "v3.11.1")
DOCKER_LOGIN = Action("docker/login-action", "184bdaa0721073962dff0199f1fb9940f07167d1", "v3.5.0")
BUILD_PUSH = Action("docker/build-push-action", "263435318d21b8e681c14492fe198d362a7d2c83", "v6.18.0")
ACTIONS = (CHECKOUT, SETUP_PYTHON, UPLOAD_ARTIFACT, SETUP_BUILDX, DOCKER_LOGIN, BUILD_PUSH)


def checkout_step() -> dict[str, Any]:
    return {"name": "Check out", "uses": CHECKOUT.uses, "with": {"persist-credentials": False}}


def setup_steps(python_version: str, extras: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    install = f"python -m pip install -e '.[{','.join(extras)}]'" if extras else "python -m pip install -e ."
    return [
        checkout_step(),
        {
            "name": "Set up Python",
            "uses": SETUP_PYTHON.uses,
            "with": {"python-version": python_version, "cache": "pip", "cache-dependency-path": "pyproject.toml"},
        },
        {"name": "Install", "run": install},
    ]


def run_step(name: str, command: str, **extra: Any) -> dict[str, Any]:
    assert "${{" not in command, command  # values reach commands through env only
    return {"name": name, "run": command, **extra}


def expression(text: str) -> str:
    return f"${{{{ {text} }}}}"


def trigger_paths(recipe) -> list[str]:
    ref = recipe_ref(recipe)
    paths = [
        *recipe.ci.paths,
        f"{RECIPES_DIR}/{ref}.yaml",
        f"{RECIPES_DIR}/{ref.replace('-', '_')}.yaml",  # how the CLI finds a name's file
        f"{RECIPES_DIR}/*/**",  # group options and env overlays
        DOCKERFILE,  # the image every job deploys
        f"{WORKFLOWS_DIR}/{workflow_file(recipe)}",
    ]
    return list(dict.fromkeys(paths))


def _gpu_training(recipe) -> bool:
    return recipe.training is not None and recipe.training.gpus_per_worker > 0


def needs_gpu_image(recipe) -> bool:
    """GPU training or GPU serving in the framework's own image: the Dockerfile's cuda target."""
    serving = recipe.serving
    gpu_serving = getattr(getattr(serving, "instances", None), "kind", "cpu") == "gpu" and serving.backend in ("triton", "ray_serve")
    return _gpu_training(recipe) or gpu_serving


def image_variant(recipe) -> str:
    return "cuda" if needs_gpu_image(recipe) else "cpu"


def registry_host(image: str) -> str:
    """The registry an image reference names (Docker Hub when its first part is no host)."""
    first = image.split("/", 1)[0]
    return first if "/" in image and ("." in first or ":" in first or first == "localhost") else "docker.io"


def train_runner(recipe) -> list[str]:
    """GPU runner labels when the recipe trains on GPUs and has a GPU runner."""
    runners = recipe.ci.runners
    if _gpu_training(recipe) and runners.gpu:
        return list(runners.gpu)
    return list(runners.default)


def train_timeout(recipe) -> int:
    if recipe.training is None:
        return TRAIN_TIMEOUT_DEFAULT
    minutes = math.ceil(duration_seconds(recipe.training.timeout) / 60) + TRAIN_TIMEOUT_SETUP
    return min(minutes, JOB_TIMEOUT_MAX)


def secret_env(recipe) -> dict[str, str]:
    """Each deploy.secrets name as an env var from the repository/environment secret
    of the same name (the recipe holds only the name; GitHub holds the value)."""
    return {name: expression(f"secrets.{name}") for name in sorted(recipe.deploy.secrets)}


def environment_of(env) -> dict[str, Any] | str:
    return {"name": env.name, "url": env.url} if env.url else env.name


def endpoint_variable(env) -> str:
    """The repository variable the smoke test reads when the recipe names no endpoint."""
    return "MLOPS_" + re.sub(r"[^A-Z0-9]", "_", env.name.upper()) + "_ENDPOINT"


def variables(recipe) -> list[str]:
    """Every repository variable (`vars.*`) the recipe's pipeline reads."""
    names = [VAR_TRACKING_URI] if recipe.model.kind == "tabular" else []
    if recipe.training is not None and recipe.training.engine == "ray":
        names.append(VAR_RAY_ADDRESS)
    staging = recipe.ci.environments[0] if recipe.ci.environments else None
    if staging is not None and staging.endpoint is None:
        names.append(endpoint_variable(staging))
    return sorted(names)


def recipe_ref(recipe) -> str:
    """How the workflow names the recipe on the `mlops` command line.

    The CLI takes a recipe's name (`support-assistant` finds support_assistant.yaml);
    the file stem would be exact, but the validated recipe does not carry it yet.
    """
    return recipe.name
