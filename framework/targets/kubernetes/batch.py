"""`batch.schedule`: the objects of k8s/batch-cronjob.yaml, which start the batch RayJob
(ray/batch-rayjob.yaml, framework/targets/batch.py) on schedule.

Why a CronJob: the vendored KubeRay RayJob CRD (v1.7.0, vendor/crds/jsonschema/ray.io/
rayjob_v1.json) has no `spec.schedule`, so KubeRay cannot run a RayJob on a schedule by
itself. Each run of the CronJob creates one RayJob from the ConfigMap that holds the
very bytes of ray/batch-rayjob.yaml (`generateName`: a new object each run) and waits
until it finishes; that is what makes `concurrencyPolicy: Forbid` hold for the RayJob,
not only for the pod that creates it: two runs never write batch.output at once.

The pod runs `python -m framework.runtime.batch.launch` from deploy.image (the
framework's in-cluster Kubernetes client and its RayJob status reader) rather than
`kubectl create -f`: the stock kubectl image has no shell to create and then wait, and
a pod that only creates would let a slow run overlap the next one. It is idempotent
within one Job: the RayJob carries the Job's uid as a label, and a retried pod (lost
node, API server hiccup) finds it and waits instead of creating a second one.

- ServiceAccount `<recipe>-batch-launcher`, bound by a Role that allows only create,
  get and list on rayjobs.ray.io in the namespace. Its token is not automounted: the
  pod mounts a projected, expiring token (the kubelet's own layout at
  /var/run/secrets/kubernetes.io/serviceaccount), the one pod of the recipe that
  calls the Kubernetes API.
- ConfigMap `<recipe>-batch-rayjob` with `rayjob.yaml`.
- CronJob `<recipe>-batch` on batch.schedule (UTC), Forbid, a deadline of batch.timeout
  plus the cluster's start; the launcher's exit code 3 (the RayJob failed: KubeRay
  already retried it, backoffLimit) fails the Job at once, other failures retry.
"""

from __future__ import annotations

from typing import Any

from framework.contracts import entrypoints
from framework.recipe.types import duration_seconds
from framework.targets import batch as batch_target
from framework.targets import common
from framework.targets.kubernetes import jobs, pods

COMPONENT = batch_target.COMPONENT
LAUNCH_MODULE = entrypoints.BATCH_LAUNCH
LAUNCH_FAILED_EXIT_CODE = entrypoints.BATCH_LAUNCH_FAILED_EXIT_CODE  # the launcher's: the RayJob failed
RUN_LABEL_ENV = entrypoints.BATCH_RUN_ENV  # the Job's uid, which the launcher puts on the RayJob it creates
JOB_UID_LABEL = "batch.kubernetes.io/controller-uid"  # on every pod of a Job (Kubernetes >= 1.27)
RAYJOB_FILE = "rayjob.yaml"
RAYJOB_DIR = "/etc/mlops-batch"
TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"  # where in-cluster clients read it
TOKEN_SECONDS = 3600  # the kubelet renews it at 80%; the client re-reads the file
LAUNCHER_RESOURCES = ("250m", "512Mi")  # a Python process polling one object
START_GRACE_SECONDS = 900  # past batch.timeout: the RayJob's cluster starting and being torn down
LAUNCH_RETRIES = 2
START_DEADLINE_SECONDS = 300


def scheduled(recipe) -> bool:
    return batch_target.enabled(recipe) and recipe.batch.schedule is not None


def _metadata(recipe, name: str, **extra: Any) -> dict[str, Any]:
    return common.metadata(recipe, name, COMPONENT, **extra)


def service_account(recipe) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _metadata(recipe, common.names(recipe).batch_launcher),
        "automountServiceAccountToken": False,
    }


def role(recipe) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": _metadata(recipe, common.names(recipe).batch_launcher),
        "rules": [{"apiGroups": ["ray.io"], "resources": ["rayjobs"], "verbs": ["create", "get", "list"]}],
    }


def role_binding(recipe) -> dict[str, Any]:
    name = common.names(recipe).batch_launcher
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": _metadata(recipe, name),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": recipe.deploy.namespace}],
    }


def rayjob_configmap(recipe) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(recipe, common.names(recipe).batch_rayjob_configmap),
        "data": {RAYJOB_FILE: batch_target.rayjob_text(recipe)},
    }


def _token_volume() -> tuple[dict[str, Any], dict[str, Any]]:
    """The service account token, CA and namespace, as the kubelet mounts them when a
    token is automounted, but for this container alone and expiring."""
    volume = {
        "name": "kube-api-access",
        "projected": {
            "sources": [
                {"serviceAccountToken": {"path": "token", "expirationSeconds": TOKEN_SECONDS}},
                {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"downwardAPI": {"items": [{"path": "namespace",
                                            "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}},
            ],
        },
    }
    return volume, {"name": "kube-api-access", "mountPath": TOKEN_DIR, "readOnly": True}


def cronjob(recipe) -> dict[str, Any]:
    batch = recipe.batch
    names = common.names(recipe)
    tmp_volume, tmp_mount = pods.tmp_dir()
    token_volume, token_mount = _token_volume()
    rayjob_volume = {"name": "batch-rayjob", "configMap": {"name": names.batch_rayjob_configmap}}
    rayjob_mount = {"name": "batch-rayjob", "mountPath": RAYJOB_DIR, "readOnly": True}
    run_env = {"name": RUN_LABEL_ENV,
               "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": f"metadata.labels['{JOB_UID_LABEL}']"}}}
    container = pods.container(
        "launch",
        recipe.deploy.image,
        command=["python", "-m", LAUNCH_MODULE, f"{RAYJOB_DIR}/{RAYJOB_FILE}"],
        resources=common.resources(*LAUNCHER_RESOURCES),
        mounts=[tmp_mount, token_mount, rayjob_mount],
        env=[*pods.PYTHON_ENV, run_env],
    )
    pod = pods.pod_spec(
        recipe, [container], volumes=[tmp_volume, token_volume, rayjob_volume], recipe_volume=False,
        restartPolicy="Never", serviceAccountName=names.batch_launcher,
    )
    metadata = _metadata(recipe, names.batch_cronjob, annotations=pods.workload_skips(pod))
    return jobs.cron_job(recipe, metadata, COMPONENT, batch.schedule, pod, retries=LAUNCH_RETRIES,
                         deadline_seconds=int(duration_seconds(batch.timeout)) + START_GRACE_SECONDS,
                         start_deadline_seconds=START_DEADLINE_SECONDS, fail_on=("launch", LAUNCH_FAILED_EXIT_CODE))


def objects(recipe) -> list[dict[str, Any]]:
    """What k8s/batch-cronjob.yaml holds, in the order they are needed."""
    return [service_account(recipe), role(recipe), role_binding(recipe), rayjob_configmap(recipe), cronjob(recipe)]
