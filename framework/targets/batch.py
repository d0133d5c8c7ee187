"""Batch target (tabular recipes with `batch.input` and `batch.output`): the batch
scoring job as a KubeRay RayJob, `ray/batch-rayjob.yaml`.

* Entrypoint `python -m framework.runtime.batch <resolved recipe> --input <batch.input>
  --output <batch.output> --alias <batch.alias> --overwrite`: the same `run_batch` as
  `mlops batch`, on the mounted resolved recipe (like every job of a recipe), on this
  RayJob's cluster instead of an embedded Ray. `--overwrite`: each run replaces what
  batch.output holds, so a scheduled run is never refused by the previous run's parts.
* Sized from the `batch` section: one worker pod per actor (`cpus_per_actor`,
  `memory_per_actor`); the head (`batch.head`) runs the driver, which writes the parts,
  and has one Ray CPU: one more than the actor pool takes, so the pool cannot starve
  Ray Data's reads (what the embedded Ray's spare CPU does locally).
* Pods, environment, secrets and submitter come from the training RayJob's builders in
  `framework.targets.ray`: the same locked-down pods, tracking URI in the runtime env,
  deploy.secrets by reference.
* `metadata.generateName`, not a name: each `kubectl create -f ray/batch-rayjob.yaml`
  (or each scheduled run) is a new RayJob, `<recipe>-batch-xxxxx`. `apply --target
  kubernetes` does not run it (it is not in `k8s_objects.APPLIED_FILES`): scoring is
  asked for, by hand or by `batch.schedule`, whose CronJob (k8s/batch-cronjob.yaml,
  rendered by the kubernetes target) carries these very bytes in a ConfigMap.

Pure: builds dicts and dumps them with `common.yaml_text`; imports no ray.
"""

from __future__ import annotations

import shlex
from typing import Any

import yaml

from framework.contracts import entrypoints
from framework.contracts.ray import runtime_env
from framework.recipe.types import duration_seconds
from framework.targets import Artifact, common
from framework.targets import ray as ray_target

BATCH_MODULE = entrypoints.BATCH
COMPONENT = "batch"
RAYJOB = "ray/batch-rayjob.yaml"
# Each retry is a fresh cluster running the same command, which starts the output over
# (--overwrite): one retry rides out a lost node without hiding a job that keeps failing.
RETRIES = 1
HEAD_READ_CPUS = 1  # Ray CPUs of the head, for Ray Data's read tasks


def enabled(recipe) -> bool:
    return recipe.model.kind == "tabular" and recipe.batch.on_cluster


def entrypoint(recipe) -> str:
    batch = recipe.batch
    return shlex.join([
        "python", "-m", BATCH_MODULE, common.recipe_path_in_pod(),
        "--input", batch.input, "--output", batch.output, "--alias", batch.alias, "--overwrite",
    ])


def rayjob(recipe) -> dict[str, Any]:
    batch = recipe.batch
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayJob",
        "metadata": {
            "generateName": common.names(recipe).batch_job_prefix,
            "namespace": recipe.deploy.namespace,
            "labels": common.labels(recipe, COMPONENT),
        },
        "spec": {
            "entrypoint": entrypoint(recipe),
            "runtimeEnvYAML": yaml.safe_dump(runtime_env(recipe), sort_keys=True, default_flow_style=False),
            "shutdownAfterJobFinishes": True,
            "ttlSecondsAfterFinished": ray_target.RAYJOB_TTL_SECONDS,
            "activeDeadlineSeconds": int(duration_seconds(batch.timeout)),
            "backoffLimit": RETRIES,
            "submitterPodTemplate": ray_target._submitter_template(recipe, COMPONENT),
            "rayClusterSpec": {
                "rayVersion": ray_target.RAY_VERSION,
                "headGroupSpec": ray_target._head_group(
                    recipe, COMPONENT, recipe.deploy.image, batch.head.cpu, batch.head.memory,
                    num_cpus=HEAD_READ_CPUS, service_account=recipe.deploy.service_account,
                ),
                "workerGroupSpecs": [
                    ray_target._worker_group(
                        recipe, COMPONENT,
                        image=recipe.deploy.image,
                        # fixed size: the actor pool starts every actor at once
                        count=(batch.actors,) * 3,
                        cpu=ray_target.cpu_quantity(batch.cpus_per_actor),
                        memory=batch.memory_per_actor,
                        gpus=0,  # the predictor runs ONNX Runtime on CPUs
                        gpu_type=None,
                    )
                ],
            },
        },
    }


def rayjob_text(recipe) -> str:
    """ray/batch-rayjob.yaml, byte for byte what the CronJob's ConfigMap carries."""
    return common.yaml_text(recipe, rayjob(recipe))


def render(recipe) -> list[Artifact]:
    return [Artifact(RAYJOB, rayjob_text(recipe))] if enabled(recipe) else []
