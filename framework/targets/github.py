"""GitHub Actions: each recipe's ML pipeline and the shared regenerate workflow.

Workflows are per recipe, not per env: `generate` renders a recipe once per env and
every env must give the same bytes, so nothing here reads an env-dependent field
(namespace, tracking URI, replicas, GPU type). What is read: `name`, `ci.*`,
`training` (runner choice and timeout), `deploy.image` (what build-image pushes),
whether the recipe needs GPUs (the image variant) and the names (never values) in
`deploy.secrets`.

`mlops-<recipe>.yml` chains these jobs, each on a fresh runner, each one command of the
CLI that does what the job's name says (RECIPES.md):

    build-image ──────────────────────────────────┐
    validate-data -> train -> evaluate -> quality-gate -> deploy-staging -> smoke-test
                                                        -> deploy-production

- build-image: the project's Dockerfile (target cpu, or cuda for GPU recipes) with
  docker's buildx and build-push actions, tagged with the commit SHA and pushed on
  pushes (built only, for pull requests); the only job with `packages: write`;
- validate-data: `mlops check-data` loads the data and runs the expectations; the
  report goes to the job summary and is uploaded as an artifact;
- train: `mlops apply --target ray --register-only` submits the RayJob's entrypoint to
  the cluster at `vars.RAY_ADDRESS` (a PyTorchJob recipe: `--target kubernetes
  --training-only --register-only`); its outputs are the MLflow run id and model version;
- evaluate: `mlops evaluate --version N` re-scores that version from the registry;
- quality-gate: `mlops gate --version N` checks the gates against its recorded metrics
  (exit 1 stops the pipeline); on pushes a pass promotes it (alias candidate);
- deploy-staging / deploy-production: `mlops apply --target kubernetes --skip-training
  --image-tag <sha>` with the environment's `KUBECONFIG` secret;
- smoke-test: `mlops smoke --url <endpoint>` against staging.
RAG recipes have no model to train or gate: validate-data checks the corpus, evaluate
runs the retrieval evaluation against its gates, and the deploy chain follows.

Security:
- every action is pinned by the full commit SHA of a release tag (comment: the tag);
- top-level `permissions: {contents: read}`; build-image alone adds `packages: write`;
- no `${{ }}` inside `run:`: values reach commands through `env:` (`vars.*`,
  `secrets.<NAME>` for each name in deploy.secrets, `needs.*.outputs.*`);
- deploy jobs run only for pushes, i.e. pushes to `ci.branches` (the only branches
  `on.push` listens to: "branches whose pushes deploy"), never for pull requests or
  manual runs; each deploy job names a GitHub environment from `ci.environments`
  (first: staging, last: production). `approval: true` in the recipe means that
  environment has required reviewers configured on GitHub (Settings ->
  Environments): GitHub, not the workflow, holds the job until a reviewer approves.

Triggers: pushes to `ci.branches` and pull requests, both filtered to the recipe's
inputs (`ci.paths`, the recipe file, the group folders `recipes/*/**` that any recipe
may compose, the Dockerfile and the workflow itself; other recipes' top-level files are
left out), and `workflow_dispatch` (validate, train, evaluate and gate by hand; no deploy).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from framework.recipe.types import duration_seconds, image_repository
from framework.contracts.workflows import REGENERATE_FILE, workflow_file
from framework.targets import Artifact
from framework.targets.common import GENERATED_BY, header, yaml_text

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


def recipe_ref(recipe) -> str:
    """How the workflow names the recipe on the `mlops` command line.

    The CLI takes a recipe's name (`support-assistant` finds support_assistant.yaml);
    the file stem would be exact, but the validated recipe does not carry it yet.
    """
    return recipe.name


def render(recipe) -> list[Artifact]:
    return [
        Artifact(workflow_file(recipe), pipeline_text(recipe), scope="workflows"),
        Artifact(REGENERATE_FILE, regenerate_text(recipe), scope="workflows"),
    ]


# --- text ---------------------------------------------------------------------------
def _dump(recipe, workflow: dict[str, Any], first_line: str) -> str:
    """Sorted-key YAML (common.yaml_text) under an env-independent header, with the
    release tag commented next to every pinned action."""
    text = yaml_text(recipe, workflow)
    env_header = header(recipe)
    assert text.startswith(env_header)
    body = text[len(env_header):]
    for action in ACTIONS:
        body = body.replace(f"uses: {action.uses}\n", f"uses: {action.uses} # {action.tag}\n")
    return (
        f"# {first_line}\n"
        f"# Do not edit: change {RECIPES_DIR}/ and run `mlops generate`.\n"
        + body
    )


def pipeline_text(recipe) -> str:
    return _dump(
        recipe,
        pipeline(recipe),
        f"Generated by {GENERATED_BY} from recipe '{recipe.name}' (the same for every env).",
    )


def regenerate_text(recipe) -> str:
    return _dump(
        recipe,
        regenerate(),
        f"Generated by {GENERATED_BY} (the same for every recipe).",
    )


# --- building blocks ----------------------------------------------------------------
def _checkout() -> dict[str, Any]:
    return {"name": "Check out", "uses": CHECKOUT.uses, "with": {"persist-credentials": False}}


def _setup_steps(python_version: str) -> list[dict[str, Any]]:
    return [
        _checkout(),
        {
            "name": "Set up Python",
            "uses": SETUP_PYTHON.uses,
            "with": {"python-version": python_version, "cache": "pip", "cache-dependency-path": "pyproject.toml"},
        },
        {"name": "Install", "run": "python -m pip install -e ."},
    ]


def _run(name: str, command: str, **extra: Any) -> dict[str, Any]:
    assert "${{" not in command, command  # values reach commands through env only
    return {"name": name, "run": command, **extra}


def _expr(text: str) -> str:
    return f"${{{{ {text} }}}}"


def _trigger_paths(recipe) -> list[str]:
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


def _train_timeout(recipe) -> int:
    if recipe.training is None:
        return TRAIN_TIMEOUT_DEFAULT
    minutes = math.ceil(duration_seconds(recipe.training.timeout) / 60) + TRAIN_TIMEOUT_SETUP
    return min(minutes, JOB_TIMEOUT_MAX)


def _secret_env(recipe) -> dict[str, str]:
    """Each deploy.secrets name as an env var from the repository/environment secret
    of the same name (the recipe holds only the name; GitHub holds the value)."""
    return {name: _expr(f"secrets.{name}") for name in sorted(recipe.deploy.secrets)}


def _environment(env) -> dict[str, Any] | str:
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


# --- the recipe's pipeline ------------------------------------------------------------
PUSH_ONLY = "github.event_name == 'push'"
MODEL_VERSION = _expr("needs.train.outputs.model-version")
IMAGE_TAG = _expr("needs.build-image.outputs.tag")


def pipeline(recipe) -> dict[str, Any]:
    ci = recipe.ci
    order = TABULAR_JOBS if recipe.model.kind == "tabular" else RAG_JOBS
    jobs = _tabular_jobs(recipe) if recipe.model.kind == "tabular" else _rag_jobs(recipe)
    jobs.update(_build_image_job(recipe))
    jobs.update(_deploy_jobs(recipe, order))
    for job_id, job in jobs.items():
        job.setdefault("runs-on", list(ci.runners.default))
        job.setdefault("timeout-minutes", TIMEOUT_MINUTES.get(job_id, TRAIN_TIMEOUT_DEFAULT))
    assert sorted(jobs) == sorted(order)
    paths = _trigger_paths(recipe)
    return {
        "name": f"mlops {recipe.name}",
        "on": {
            "push": {"branches": list(ci.branches), "paths": paths},
            "pull_request": {"paths": paths},
            "workflow_dispatch": {},
        },
        "permissions": {"contents": "read"},
        "concurrency": {
            "group": f"mlops-{recipe.name}-{_expr('github.ref')}",
            "cancel-in-progress": _expr("github.event_name == 'pull_request'"),
        },
        "defaults": {"run": {"shell": "bash"}},  # bash -eo pipefail
        "jobs": jobs,
    }


def _job(recipe, name: str, commands: list[dict[str, Any]], *, needs: list[str] | None = None,
         env: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "steps": [*_setup_steps(recipe.ci.python_version), *commands]}
    if needs:
        body["needs"] = needs
    if env:
        body["env"] = dict(env)
    body.update(extra)
    return body


def _validate_data_job(recipe) -> dict[str, Any]:
    ref = recipe_ref(recipe)
    what = "data" if recipe.model.kind == "tabular" else "documents"
    return _job(recipe, f"Validate recipe and {what}", [
        _run("Validate the recipe in every env", f"mlops validate {ref} --all-envs"),
        _run(f"Load the {what} and check {'the expectations' if what == 'data' else 'them'}",
             f"mlops check-data {ref} --env {STAGING_OVERLAY} --report-dir {REPORT_DIR}"),
        {"name": f"Upload the {what} report", "if": _expr("always()"), "uses": UPLOAD_ARTIFACT.uses,
         "with": {"name": f"{what}-report-{recipe.name}", "path": REPORT_DIR, "if-no-files-found": "ignore"}},
    ], env=_secret_env(recipe))  # data on s3:// or gs:// may need the credentials


def _tabular_jobs(recipe) -> dict[str, Any]:
    ref = recipe_ref(recipe)
    secrets = _secret_env(recipe)
    registry = {VAR_TRACKING_URI: _expr(f"vars.{VAR_TRACKING_URI}"), **secrets}
    versioned = {**registry, "MODEL_VERSION": MODEL_VERSION}
    gate = f'mlops gate {ref} --env {STAGING_OVERLAY} --version "$MODEL_VERSION"'
    return {
        "validate-data": _validate_data_job(recipe),
        "train": _train_job(recipe, registry),
        "evaluate": _job(recipe, "Evaluate", [
            _run("Re-score the registered version", f'mlops evaluate {ref} --env {STAGING_OVERLAY} --version "$MODEL_VERSION"'),
        ], needs=["train"], env=versioned),
        "quality-gate": _job(recipe, "Quality gate", [
            _run("Check the gates", gate, **{"if": "github.event_name != 'push'"}),
            _run("Check the gates and promote the version", f"{gate} --promote", **{"if": PUSH_ONLY}),
        ], needs=["train", "evaluate"], env=versioned),
    }


def _kubeconfig_step(where: str) -> dict[str, Any]:
    """Write the KUBECONFIG secret (the environment's, else the repository's) to a file
    and point later steps at it."""
    return _run("Cluster credentials (the KUBECONFIG secret)",
                f'test -n "$KUBECONFIG_CONTENT" || {{ echo "::error::set the {SECRET_KUBECONFIG} secret {where}"; exit 1; }}\n'
                'printf \'%s\\n\' "$KUBECONFIG_CONTENT" > "$RUNNER_TEMP/kubeconfig"\n'
                'echo "KUBECONFIG=$RUNNER_TEMP/kubeconfig" >> "$GITHUB_ENV"')


def _train_job(recipe, registry: dict[str, str]) -> dict[str, Any]:
    """Ray Train on the Ray cluster (engine ray), or the PyTorchJob on the cluster of the
    repository's KUBECONFIG secret (engine pytorchjob); either registers the version
    without aliases and hands on its MLflow run id and version."""
    ref = recipe_ref(recipe)
    if recipe.training.engine == "ray":
        steps = [_run("Train on Ray and register the model",
                      f'mlops apply {ref} --env {STAGING_OVERLAY} --target ray --address "$RAY_ADDRESS" --register-only',
                      id="train")]
        env = {VAR_RAY_ADDRESS: _expr(f"vars.{VAR_RAY_ADDRESS}"), SECRET_RAY_TOKEN: _expr(f"secrets.{SECRET_RAY_TOKEN}")}
    else:
        steps = [_kubeconfig_step("of the repository (the training cluster)"),
                 _run("Train in a PyTorchJob and register the model",
                      f"mlops apply {ref} --env {STAGING_OVERLAY} --target kubernetes --training-only --register-only",
                      id="train")]
        env = {"KUBECONFIG_CONTENT": _expr(f"secrets.{SECRET_KUBECONFIG}")}
    return _job(recipe, "Train", steps, needs=["validate-data"], env={**env, **registry},
                outputs={"run-id": _expr("steps.train.outputs.run-id"),
                         "model-version": _expr("steps.train.outputs.model-version")},
                **{"runs-on": train_runner(recipe), "timeout-minutes": _train_timeout(recipe)})


def _rag_jobs(recipe) -> dict[str, Any]:
    ref = recipe_ref(recipe)
    return {
        "validate-data": _validate_data_job(recipe),
        "evaluate": _job(recipe, "Evaluate retrieval against the gates", [
            _run("Index the documents, measure recall@k and MRR, check the gates", f"mlops evaluate {ref} --env {STAGING_OVERLAY}"),
        ], needs=["validate-data"], env=_secret_env(recipe)),
    }


def _build_image_job(recipe) -> dict[str, Any]:
    repository = image_repository(recipe.deploy.image)
    host = registry_host(recipe.deploy.image)
    variant = image_variant(recipe)
    suffix = "" if variant == "cpu" else f"-{variant}"
    if host == "ghcr.io":
        login = {"registry": host, "username": _expr("github.actor"), "password": _expr("secrets.GITHUB_TOKEN")}
    else:
        login = {"registry": host, "username": _expr(f"secrets.{SECRET_REGISTRY_USER}"),
                 "password": _expr(f"secrets.{SECRET_REGISTRY_PASSWORD}")}
    steps = [
        _checkout(),
        _run("Image tag: the commit", f'echo "tag=${{GITHUB_SHA}}{suffix}" >> "$GITHUB_OUTPUT"', id="tag"),
        {"name": "Set up Docker Buildx", "uses": SETUP_BUILDX.uses},
        {"name": f"Log in to {host}", "if": PUSH_ONLY, "uses": DOCKER_LOGIN.uses, "with": login},
        {"name": f"Build the {variant} image (push on pushes)", "uses": BUILD_PUSH.uses, "with": {
            "context": ".",
            "file": DOCKERFILE,
            "target": variant,
            "push": _expr(PUSH_ONLY),
            "tags": f"{repository}:{_expr('steps.tag.outputs.tag')}",
            "build-args": f"REVISION={_expr('github.sha')}\n"
                          f"SOURCE_URL={_expr('github.server_url')}/{_expr('github.repository')}\n",
        }},
    ]
    return {"build-image": {
        "name": "Build the runtime image",
        "permissions": {"contents": "read", "packages": "write"},
        "outputs": {"tag": _expr("steps.tag.outputs.tag")},
        "steps": steps,
    }}


def _deploy_jobs(recipe, order: tuple[str, ...]) -> dict[str, Any]:
    ref = recipe_ref(recipe)
    ci = recipe.ci
    secrets = _secret_env(recipe)
    staging_env = ci.environments[0] if ci.environments else None
    production_env = ci.environments[-1] if ci.environments else None
    before_deploy = order[order.index("deploy-staging") - 1]
    tabular = recipe.model.kind == "tabular"
    skip = " --skip-training" if tabular else ""

    def deploy(key: str, title: str, overlay: str, environment, needs: list[str]) -> dict[str, Any]:
        env_name = environment.name if environment else overlay
        return _job(recipe, title, [
            _kubeconfig_step(f"of environment {env_name}"),
            _run(f"Apply to Kubernetes ({overlay})",
                 f'mlops apply {ref} --env {overlay} --target kubernetes{skip} --image-tag "$IMAGE_TAG"'),
        ], needs=needs, env={"IMAGE_TAG": IMAGE_TAG, "KUBECONFIG_CONTENT": _expr(f"secrets.{SECRET_KUBECONFIG}"), **secrets},
            environment=_environment(environment) if environment is not None else overlay, **{"if": PUSH_ONLY})

    endpoint = staging_env.endpoint if staging_env and staging_env.endpoint else \
        _expr(f"vars.{endpoint_variable(staging_env)}") if staging_env else ""
    smoke_env = {"SMOKE_URL": endpoint, **secrets}
    smoke_command = f'mlops smoke {ref} --env {STAGING_OVERLAY} --url "$SMOKE_URL"'
    smoke_needs = ["deploy-staging"]
    if tabular:  # offline predictions of the registered version: the registry
        smoke_env.update({VAR_TRACKING_URI: _expr(f"vars.{VAR_TRACKING_URI}"), "MODEL_VERSION": MODEL_VERSION})
        smoke_command += ' --version "$MODEL_VERSION"'
        smoke_needs = ["train", "deploy-staging"]
    return {
        "deploy-staging": deploy("deploy-staging", "Deploy to staging", STAGING_OVERLAY, staging_env,
                                 ["build-image", before_deploy]),
        "smoke-test": _job(recipe, "Smoke test staging", [_run("Requests from validation rows against staging", smoke_command)],
                           needs=smoke_needs, env=smoke_env, **{"if": PUSH_ONLY}),
        "deploy-production": deploy("deploy-production", "Deploy to production", PRODUCTION_OVERLAY, production_env,
                                    ["build-image", "smoke-test"]),
    }


# --- the shared drift check -----------------------------------------------------------
def regenerate() -> dict[str, Any]:
    return {
        "name": "mlops regenerate",
        "on": {"pull_request": {}, "push": {"branches": list(REGENERATE_BRANCHES)}, "workflow_dispatch": {}},
        "permissions": {"contents": "read"},
        "concurrency": {"group": "mlops-regenerate-${{ github.ref }}", "cancel-in-progress": True},
        "defaults": {"run": {"shell": "bash"}},
        "jobs": {
            "check": {
                "name": "Generated files match the recipes",
                "runs-on": REGENERATE_RUNNER,
                "timeout-minutes": 30,
                "steps": [
                    *_setup_steps(REGENERATE_PYTHON),
                    _run("Schemas up to date", "mlops schema --check"),
                    _run("Generated artifacts and workflows up to date", "mlops generate --all-envs --check"),
                ],
            }
        },
    }
