"""GitHub Actions: each recipe's ML pipeline and the shared regenerate workflow.

Workflows are per recipe, not per env: `generate` renders a recipe once per env and
every env must give the same bytes, so nothing here reads an env-dependent field
(namespace, tracking URI, replicas, GPU type). What is read: `name`, `ci.*`,
`training` (runner choice and timeout) and the names (never values) in
`deploy.secrets`.

`mlops-<recipe>.yml` chains seven jobs, each on a fresh runner:

    validate-data -> train -> evaluate -> quality-gate
                  -> deploy-staging -> smoke-test -> deploy-production

Every job checks out (no persisted credentials), sets up Python, runs
`pip install -e .` and then only `mlops` commands (RECIPES.md's CLI). Security:

- every action is pinned by the full commit SHA of a release tag (comment: the tag);
- top-level `permissions: {contents: read}`; no job needs more;
- no `${{ }}` inside `run:`: repository variables and secrets reach commands through
  job `env:` (`vars.RAY_ADDRESS`, `secrets.<NAME>` for each name in deploy.secrets);
- deploy jobs run only for pushes, i.e. pushes to `ci.branches` (the only branches
  `on.push` listens to: "branches whose pushes deploy"), never for pull requests or
  manual runs; each deploy job names a GitHub environment from `ci.environments`
  (first: staging, last: production). `approval: true` in the recipe means that
  environment has required reviewers configured on GitHub (Settings ->
  Environments): GitHub, not the workflow, holds the job until a reviewer approves.

Triggers: pushes to `ci.branches` and pull requests, both filtered to the recipe's
inputs (`ci.paths`, the recipe file, the group folders `recipes/*/**` that any recipe
may compose, and the workflow itself; other recipes' top-level files are left out),
and `workflow_dispatch` (validate, train, evaluate and gate by hand; no deploy).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from framework import __version__
from framework.recipe.types import duration_seconds
from framework.targets import Artifact
from framework.targets.common import GENERATED_BY, header, yaml_text

# Project defaults ([tool.mlops] recipes_dir / workflows_dir); the recipe does not carry
# the project's settings, so path filters assume the defaults.
RECIPES_DIR = "recipes"
WORKFLOWS_DIR = ".github/workflows"

REGENERATE_FILE = "mlops-regenerate.yml"
# The regenerate workflow is the same for every recipe, so it reads no recipe field.
REGENERATE_BRANCHES = ("main",)
REGENERATE_PYTHON = "3.11"
REGENERATE_RUNNER = "ubuntu-latest"

# Overlay each deploy job composes with (`--env`): recipes/env/<overlay>.yaml.
STAGING_OVERLAY = "staging"
PRODUCTION_OVERLAY = "prod"

JOB_ORDER = (
    "validate-data",
    "train",
    "evaluate",
    "quality-gate",
    "deploy-staging",
    "smoke-test",
    "deploy-production",
)

TIMEOUT_MINUTES = {
    "validate-data": 30,
    "evaluate": 30,
    "quality-gate": 30,
    "deploy-staging": 60,
    "smoke-test": 15,
    "deploy-production": 60,
}
TRAIN_TIMEOUT_DEFAULT = 60
TRAIN_TIMEOUT_SETUP = 30  # checkout, install (torch, ray) and job submission
JOB_TIMEOUT_MAX = 360  # GitHub-hosted runners stop jobs after 6 hours


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
ACTIONS = (CHECKOUT, SETUP_PYTHON)


def recipe_ref(recipe) -> str:
    """How the workflow names the recipe on the `mlops` command line.

    The CLI takes a recipe's name (`support-assistant` finds support_assistant.yaml);
    the file stem would be exact, but the validated recipe does not carry it yet.
    """
    return recipe.name


def workflow_file(recipe) -> str:
    return f"mlops-{recipe.name}.yml"


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
        f"Generated by {GENERATED_BY} {__version__} from recipe '{recipe.name}' (the same for every env).",
    )


def regenerate_text(recipe) -> str:
    return _dump(
        recipe,
        regenerate(),
        f"Generated by {GENERATED_BY} {__version__} (the same for every recipe).",
    )


# --- building blocks ----------------------------------------------------------------
def _setup_steps(python_version: str) -> list[dict[str, Any]]:
    return [
        {"name": "Check out", "uses": CHECKOUT.uses, "with": {"persist-credentials": False}},
        {
            "name": "Set up Python",
            "uses": SETUP_PYTHON.uses,
            "with": {"python-version": python_version, "cache": "pip", "cache-dependency-path": "pyproject.toml"},
        },
        {"name": "Install", "run": "python -m pip install -e ."},
    ]


def _run(name: str, command: str) -> dict[str, Any]:
    assert "${{" not in command, command  # values reach commands through env only
    return {"name": name, "run": command}


def _trigger_paths(recipe) -> list[str]:
    ref = recipe_ref(recipe)
    paths = [
        *recipe.ci.paths,
        f"{RECIPES_DIR}/{ref}.yaml",
        f"{RECIPES_DIR}/{ref.replace('-', '_')}.yaml",  # how the CLI finds a name's file
        f"{RECIPES_DIR}/*/**",  # group options and env overlays
        f"{WORKFLOWS_DIR}/{workflow_file(recipe)}",
    ]
    return list(dict.fromkeys(paths))


def _gpu_training(recipe) -> bool:
    return recipe.training is not None and recipe.training.gpus_per_worker > 0


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
    return {name: f"${{{{ secrets.{name} }}}}" for name in sorted(recipe.deploy.secrets)}


def _environment(env) -> dict[str, Any] | str:
    return {"name": env.name, "url": env.url} if env.url else env.name


# --- the recipe's pipeline ------------------------------------------------------------
PUSH_ONLY = "github.event_name == 'push'"


def pipeline(recipe) -> dict[str, Any]:
    ref = recipe_ref(recipe)
    ci = recipe.ci
    secrets = _secret_env(recipe)
    default_runner = list(ci.runners.default)
    staging_env = ci.environments[0] if ci.environments else None
    production_env = ci.environments[-1] if ci.environments else None

    def job(key: str, name: str, commands: list[dict[str, Any]], *, runs_on=None, env=None,
            environment=None, condition: str | None = None, timeout: int | None = None) -> dict[str, Any]:
        index = JOB_ORDER.index(key)
        body: dict[str, Any] = {
            "name": name,
            "runs-on": runs_on or default_runner,
            "timeout-minutes": timeout or TIMEOUT_MINUTES[key],
            "steps": [*_setup_steps(ci.python_version), *commands],
        }
        if index:
            body["needs"] = [JOB_ORDER[index - 1]]
        if env:
            body["env"] = dict(env)
        if environment is not None:
            body["environment"] = _environment(environment)
        if condition:
            body["if"] = condition
        return body

    jobs = {
        "validate-data": job(
            "validate-data",
            "Validate recipe and data",
            [
                _run("Validate the recipe in every env", f"mlops validate {ref} --all-envs"),
                _run("Validate the data (dry run)", f"mlops apply {ref} --env {STAGING_OVERLAY} --dry-run"),
            ],
        ),
        "train": job(
            "train",
            "Train",
            [_run("Train on Ray", f'mlops apply {ref} --env {STAGING_OVERLAY} --target ray --address "$RAY_ADDRESS"')],
            runs_on=train_runner(recipe),
            env={"RAY_ADDRESS": "${{ vars.RAY_ADDRESS }}", **secrets},
            timeout=_train_timeout(recipe),
        ),
        "evaluate": job(
            "evaluate",
            "Evaluate",
            # plan exits 2 when there are changes: that is a result, not a failure
            [_run("Plan (staging)", f'mlops plan {ref} --env {STAGING_OVERLAY} | tee -a "$GITHUB_STEP_SUMMARY" || test $? -eq 2')],
            env=secrets,
        ),
        "quality-gate": job(
            "quality-gate",
            "Quality gate",
            [
                _run("Plan (production)", f'mlops plan {ref} --env {PRODUCTION_OVERLAY} | tee -a "$GITHUB_STEP_SUMMARY" || test $? -eq 2'),
                _run("Check the gates (dry run)", f"mlops apply {ref} --env {PRODUCTION_OVERLAY} --dry-run"),
            ],
            env=secrets,
        ),
        "deploy-staging": job(
            "deploy-staging",
            "Deploy to staging",
            [_run("Apply to Kubernetes (staging)", f"mlops apply {ref} --env {STAGING_OVERLAY} --target kubernetes")],
            env=secrets,
            environment=staging_env,
            condition=PUSH_ONLY,
        ),
        "smoke-test": job(
            "smoke-test",
            "Smoke test",
            [_run("Rollout status", f"mlops rollout status {ref}")],
            env=secrets,
            condition=PUSH_ONLY,
        ),
        "deploy-production": job(
            "deploy-production",
            "Deploy to production",
            [_run("Apply to Kubernetes (production)", f"mlops apply {ref} --env {PRODUCTION_OVERLAY} --target kubernetes")],
            env=secrets,
            environment=production_env,
            condition=PUSH_ONLY,
        ),
    }
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
            "group": f"mlops-{recipe.name}-${{{{ github.ref }}}}",
            "cancel-in-progress": "${{ github.event_name == 'pull_request' }}",
        },
        "defaults": {"run": {"shell": "bash"}},  # bash -eo pipefail
        "jobs": jobs,
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
