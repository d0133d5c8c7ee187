"""Batch work: the PyTorchJob that trains (training.engine pytorchjob) and the CronJob
that checks drift (monitoring.drift). Both run framework entrypoints from deploy.image
on the mounted resolved recipe, like a local apply does."""

from __future__ import annotations

from typing import Any

from framework.contracts import entrypoints
from framework.recipe.types import duration_seconds
from framework.targets import common
from framework.targets.kubernetes import pods

TRAIN_COMPONENT = "training"
DRIFT_COMPONENT = "drift"
TRAIN_TTL_SECONDS = 86400  # finished jobs (and their logs) stay a day
DRIFT_EXIT_CODE = entrypoints.DRIFT_EXIT_CODE  # the monitor's: drift found (a decision, not a failure to retry)
DRIFT_RESOURCES = ("1", "2Gi")  # a window of logged traffic against the training reference
DRIFT_DEADLINE_SECONDS = 1800
DRIFT_RETRIES = 2
DRIFT_START_DEADLINE_SECONDS = 300


def pytorchjob(recipe) -> dict[str, Any]:
    """Kubeflow PyTorchJob: one Master and training.workers - 1 Workers, each a pod of
    cpus/memory/gpus_per_worker; on spot nodes when training.spot.enabled."""
    training = recipe.training
    gpus = pods.whole_gpus(training.gpus_per_worker)
    spot = training.spot
    tmp_volume, tmp_mount = pods.tmp_dir(size_limit="20Gi")  # data copies, local checkpoints
    shm_volume, shm_mount = pods.shm_dir("2Gi")  # DataLoader workers and NCCL
    container = pods.runtime_container(
        recipe, "pytorch", entrypoints.TRAINING,  # the operator requires the container name "pytorch"
        resources=common.resources(pods.cpu_quantity(training.cpus_per_worker), training.memory_per_worker, gpus),
        mounts=[tmp_mount, shm_mount], feature_store=True,  # training joins a Feast view's features
    )
    pod = pods.pod_spec(
        recipe,
        [container],
        volumes=[tmp_volume, shm_volume],
        gpu=gpus > 0,
        gpu_type=training.gpu_type,
        node_selector=dict(spot.node_selector) if spot.enabled else None,
        tolerations=[common.toleration(t) for t in spot.tolerations] if spot.enabled else (),
    )
    template = {
        "metadata": {"labels": {**common.labels(recipe, TRAIN_COMPONENT), **pods.outside_mesh(recipe)}},
        "spec": pod,
    }
    replica_specs = {"Master": {"replicas": 1, "restartPolicy": "OnFailure", "template": template}}
    if training.workers > 1:
        replica_specs["Worker"] = {"replicas": training.workers - 1, "restartPolicy": "OnFailure", "template": template}
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": common.metadata(recipe, common.names(recipe).train_job, TRAIN_COMPONENT,
                                    annotations=pods.workload_skips(pod)),
        "spec": {
            "pytorchReplicaSpecs": replica_specs,
            "runPolicy": {
                # Preempted spot workers resume from the last checkpoint, up to max_retries times.
                "backoffLimit": spot.max_retries if spot.enabled else 0,
                "activeDeadlineSeconds": int(duration_seconds(training.timeout)),
                "ttlSecondsAfterFinished": TRAIN_TTL_SECONDS,
                "cleanPodPolicy": "None",
            },
        },
    }


def drift_cronjob(recipe) -> dict[str, Any]:
    """CronJob running the drift check on monitoring.drift.schedule. Exit code 3 (drift)
    fails the Job at once, without retries; other failures retry twice."""
    drift = recipe.monitoring.drift
    tmp_volume, tmp_mount = pods.tmp_dir()
    # The check pushes model_drift_score where the PrometheusRule and dashboard read it.
    from framework.contracts.metrics import PUSHGATEWAY_ADDRESS

    container = pods.runtime_container(
        recipe, "monitor", entrypoints.MONITOR, resources=common.resources(*DRIFT_RESOURCES), mounts=[tmp_mount],
        env=[{"name": "PUSHGATEWAY_ADDRESS", "value": PUSHGATEWAY_ADDRESS}],
    )
    pod = pods.pod_spec(recipe, [container], volumes=[tmp_volume], restartPolicy="Never")
    metadata = common.metadata(recipe, common.names(recipe).drift_cronjob, DRIFT_COMPONENT,
                               annotations=pods.workload_skips(pod))
    return cron_job(recipe, metadata, DRIFT_COMPONENT, drift.schedule, pod, retries=DRIFT_RETRIES,
                    deadline_seconds=DRIFT_DEADLINE_SECONDS, start_deadline_seconds=DRIFT_START_DEADLINE_SECONDS,
                    fail_on=("monitor", DRIFT_EXIT_CODE))


def cron_job(recipe, metadata: dict[str, Any], component: str, schedule: str, pod: dict[str, Any], *, retries: int,
             deadline_seconds: int, start_deadline_seconds: int, fail_on: tuple[str, int] | None = None) -> dict[str, Any]:
    """A CronJob of the framework's (drift check, batch launch, Feast materialisation): UTC,
    never two at once, `retries` of the pod, and `fail_on` (container, exit code) failing
    the Job at once."""
    rules = []
    if fail_on is not None:
        rules.append({"action": "FailJob", "onExitCodes": {"containerName": fail_on[0], "operator": "In",
                                                           "values": [fail_on[1]]}})
    # Evicted or preempted pods (condition DisruptionTarget=True) retry without counting
    # against backoffLimit. `status` is required up to Kubernetes 1.34 (optional since
    # 1.35, defaulting to "True"), so it is always written.
    rules.append({"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]})
    job_spec = {
        "backoffLimit": retries,
        "activeDeadlineSeconds": deadline_seconds,
        "podFailurePolicy": {"rules": rules},
        "template": {
            "metadata": {"labels": common.labels(recipe, component), "annotations": pods.pod_annotations(recipe)},
            "spec": pod,
        },
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": metadata,
        "spec": {
            "schedule": schedule,
            "timeZone": "Etc/UTC",
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": start_deadline_seconds,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 5,
            "jobTemplate": {"metadata": {"labels": common.labels(recipe, component)}, "spec": job_spec},
        },
    }
