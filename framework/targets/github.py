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

from typing import Any

from framework.recipe.types import image_repository
from framework.contracts.workflows import REGENERATE_FILE, install_extras, workflow_file
from framework.targets import Artifact
from framework.targets.common import GENERATED_BY, header, yaml_text

# JOB_ORDER, TRAIN_TIMEOUT_SETUP, variables and needs_gpu_image are read as github.* too.
from framework.targets.github_steps import (  # noqa: F401
    recipe_ref,
    JOB_ORDER,
    TRAIN_TIMEOUT_SETUP,
    needs_gpu_image,
    variables,
    ACTIONS,
    BUILD_PUSH,
    DOCKERFILE,
    DOCKER_LOGIN,
    PRODUCTION_OVERLAY,
    RAG_JOBS,
    RECIPES_DIR,
    REGENERATE_BRANCHES,
    REGENERATE_PYTHON,
    REGENERATE_RUNNER,
    REPORT_DIR,
    SECRET_KUBECONFIG,
    SECRET_RAY_TOKEN,
    SECRET_REGISTRY_PASSWORD,
    SECRET_REGISTRY_USER,
    SETUP_BUILDX,
    STAGING_OVERLAY,
    TABULAR_JOBS,
    TIMEOUT_MINUTES,
    TRAIN_TIMEOUT_DEFAULT,
    UPLOAD_ARTIFACT,
    VAR_RAY_ADDRESS,
    VAR_TRACKING_URI,
    checkout_step,
    environment_of,
    expression,
    run_step,
    secret_env,
    setup_steps,
    train_timeout,
    trigger_paths,
    endpoint_variable,
    image_variant,
    registry_host,
    train_runner,
)


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


# --- the recipe's pipeline ------------------------------------------------------------
PUSH_ONLY = "github.event_name == 'push'"
MODEL_VERSION = expression("needs.train.outputs.model-version")
IMAGE_TAG = expression("needs.build-image.outputs.tag")


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
    paths = trigger_paths(recipe)
    return {
        "name": f"mlops {recipe.name}",
        "on": {
            "push": {"branches": list(ci.branches), "paths": paths},
            "pull_request": {"paths": paths},
            "workflow_dispatch": {},
        },
        "permissions": {"contents": "read"},
        "concurrency": {
            "group": f"mlops-{recipe.name}-{expression('github.ref')}",
            "cancel-in-progress": expression("github.event_name == 'pull_request'"),
        },
        "defaults": {"run": {"shell": "bash"}},  # bash -eo pipefail
        "jobs": jobs,
    }


def _job(recipe, name: str, commands: list[dict[str, Any]], *, needs: list[str] | None = None,
         env: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "steps": [*setup_steps(recipe.ci.python_version, install_extras(recipe)),
                                                     *commands]}
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
        run_step("Validate the recipe in every env", f"mlops validate {ref} --all-envs"),
        run_step(f"Load the {what} and check {'the expectations' if what == 'data' else 'them'}",
             f"mlops check-data {ref} --env {STAGING_OVERLAY} --report-dir {REPORT_DIR}"),
        {"name": f"Upload the {what} report", "if": expression("always()"), "uses": UPLOAD_ARTIFACT.uses,
         "with": {"name": f"{what}-report-{recipe.name}", "path": REPORT_DIR, "if-no-files-found": "ignore"}},
    ], env=secret_env(recipe))  # data on s3:// or gs:// may need the credentials


def _tabular_jobs(recipe) -> dict[str, Any]:
    ref = recipe_ref(recipe)
    secrets = secret_env(recipe)
    registry = {VAR_TRACKING_URI: expression(f"vars.{VAR_TRACKING_URI}"), **secrets}
    versioned = {**registry, "MODEL_VERSION": MODEL_VERSION}
    gate = f'mlops gate {ref} --env {STAGING_OVERLAY} --version "$MODEL_VERSION"'
    return {
        "validate-data": _validate_data_job(recipe),
        "train": _train_job(recipe, registry),
        "evaluate": _job(recipe, "Evaluate", [
            run_step("Re-score the registered version", f'mlops evaluate {ref} --env {STAGING_OVERLAY} --version "$MODEL_VERSION"'),
        ], needs=["train"], env=versioned),
        "quality-gate": _job(recipe, "Quality gate", [
            run_step("Check the gates", gate, **{"if": "github.event_name != 'push'"}),
            run_step("Check the gates and promote the version", f"{gate} --promote", **{"if": PUSH_ONLY}),
        ], needs=["train", "evaluate"], env=versioned),
    }


def _kubeconfig_step(where: str) -> dict[str, Any]:
    """Write the KUBECONFIG secret (the environment's, else the repository's) to a file
    and point later steps at it."""
    return run_step("Cluster credentials (the KUBECONFIG secret)",
                f'test -n "$KUBECONFIG_CONTENT" || {{ echo "::error::set the {SECRET_KUBECONFIG} secret {where}"; exit 1; }}\n'
                'printf \'%s\\n\' "$KUBECONFIG_CONTENT" > "$RUNNER_TEMP/kubeconfig"\n'
                'echo "KUBECONFIG=$RUNNER_TEMP/kubeconfig" >> "$GITHUB_ENV"')


def _train_job(recipe, registry: dict[str, str]) -> dict[str, Any]:
    """Ray Train on the Ray cluster (engine ray), or the PyTorchJob on the cluster of the
    repository's KUBECONFIG secret (engine pytorchjob); either registers the version
    without aliases and hands on its MLflow run id and version."""
    ref = recipe_ref(recipe)
    if recipe.training.engine == "ray":
        steps = [run_step("Train on Ray and register the model",
                      f'mlops apply {ref} --env {STAGING_OVERLAY} --target ray --address "$RAY_ADDRESS" --register-only',
                      id="train")]
        env = {VAR_RAY_ADDRESS: expression(f"vars.{VAR_RAY_ADDRESS}"), SECRET_RAY_TOKEN: expression(f"secrets.{SECRET_RAY_TOKEN}")}
    else:
        steps = [_kubeconfig_step("of the repository (the training cluster)"),
                 run_step("Train in a PyTorchJob and register the model",
                      f"mlops apply {ref} --env {STAGING_OVERLAY} --target kubernetes --training-only --register-only",
                      id="train")]
        env = {"KUBECONFIG_CONTENT": expression(f"secrets.{SECRET_KUBECONFIG}")}
    return _job(recipe, "Train", steps, needs=["validate-data"], env={**env, **registry},
                outputs={"run-id": expression("steps.train.outputs.run-id"),
                         "model-version": expression("steps.train.outputs.model-version")},
                **{"runs-on": train_runner(recipe), "timeout-minutes": train_timeout(recipe)})


def _rag_jobs(recipe) -> dict[str, Any]:
    ref = recipe_ref(recipe)
    return {
        "validate-data": _validate_data_job(recipe),
        "evaluate": _job(recipe, "Evaluate retrieval against the gates", [
            run_step("Index the documents, measure recall@k and MRR, check the gates", f"mlops evaluate {ref} --env {STAGING_OVERLAY}"),
        ], needs=["validate-data"], env=secret_env(recipe)),
    }


def _build_image_job(recipe) -> dict[str, Any]:
    repository = image_repository(recipe.deploy.image)
    host = registry_host(recipe.deploy.image)
    variant = image_variant(recipe)
    suffix = "" if variant == "cpu" else f"-{variant}"
    if host == "ghcr.io":
        login = {"registry": host, "username": expression("github.actor"), "password": expression("secrets.GITHUB_TOKEN")}
    else:
        login = {"registry": host, "username": expression(f"secrets.{SECRET_REGISTRY_USER}"),
                 "password": expression(f"secrets.{SECRET_REGISTRY_PASSWORD}")}
    steps = [
        checkout_step(),
        run_step("Image tag: the commit", f'echo "tag=${{GITHUB_SHA}}{suffix}" >> "$GITHUB_OUTPUT"', id="tag"),
        {"name": "Set up Docker Buildx", "uses": SETUP_BUILDX.uses},
        {"name": f"Log in to {host}", "if": PUSH_ONLY, "uses": DOCKER_LOGIN.uses, "with": login},
        {"name": f"Build the {variant} image (push on pushes)", "uses": BUILD_PUSH.uses, "with": {
            "context": ".",
            "file": DOCKERFILE,
            "target": variant,
            "push": expression(PUSH_ONLY),
            "tags": f"{repository}:{expression('steps.tag.outputs.tag')}",
            "build-args": f"REVISION={expression('github.sha')}\n"
                          f"SOURCE_URL={expression('github.server_url')}/{expression('github.repository')}\n",
        }},
    ]
    return {"build-image": {
        "name": "Build the runtime image",
        "permissions": {"contents": "read", "packages": "write"},
        "outputs": {"tag": expression("steps.tag.outputs.tag")},
        "steps": steps,
    }}


def _deploy_jobs(recipe, order: tuple[str, ...]) -> dict[str, Any]:
    ref = recipe_ref(recipe)
    ci = recipe.ci
    secrets = secret_env(recipe)
    staging_env = ci.environments[0] if ci.environments else None
    production_env = ci.environments[-1] if ci.environments else None
    before_deploy = order[order.index("deploy-staging") - 1]
    tabular = recipe.model.kind == "tabular"
    skip = " --skip-training" if tabular else ""

    def deploy(key: str, title: str, overlay: str, environment, needs: list[str]) -> dict[str, Any]:
        env_name = environment.name if environment else overlay
        return _job(recipe, title, [
            _kubeconfig_step(f"of environment {env_name}"),
            run_step(f"Apply to Kubernetes ({overlay})",
                 f'mlops apply {ref} --env {overlay} --target kubernetes{skip} --image-tag "$IMAGE_TAG"'),
        ], needs=needs, env={"IMAGE_TAG": IMAGE_TAG, "KUBECONFIG_CONTENT": expression(f"secrets.{SECRET_KUBECONFIG}"), **secrets},
            environment=environment_of(environment) if environment is not None else overlay, **{"if": PUSH_ONLY})

    endpoint = staging_env.endpoint if staging_env and staging_env.endpoint else \
        expression(f"vars.{endpoint_variable(staging_env)}") if staging_env else ""
    smoke_env = {"SMOKE_URL": endpoint, **secrets}
    smoke_command = f'mlops smoke {ref} --env {STAGING_OVERLAY} --url "$SMOKE_URL"'
    smoke_needs = ["deploy-staging"]
    if tabular:  # offline predictions of the registered version: the registry
        smoke_env.update({VAR_TRACKING_URI: expression(f"vars.{VAR_TRACKING_URI}"), "MODEL_VERSION": MODEL_VERSION})
        smoke_command += ' --version "$MODEL_VERSION"'
        smoke_needs = ["train", "deploy-staging"]
    return {
        "deploy-staging": deploy("deploy-staging", "Deploy to staging", STAGING_OVERLAY, staging_env,
                                 ["build-image", before_deploy]),
        "smoke-test": _job(recipe, "Smoke test staging", [run_step("Requests from validation rows against staging", smoke_command)],
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
                    *setup_steps(REGENERATE_PYTHON),
                    run_step("Schemas up to date", "mlops schema --check"),
                    run_step("Generated artifacts and workflows up to date", "mlops generate --all-envs --check"),
                ],
            }
        },
    }
