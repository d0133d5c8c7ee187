"""`data.source.feast`: the objects of k8s/feast-materialize.yaml, which keep the online
store fresh: a ConfigMap `<recipe>-feast` holding the env's feature_store.yaml (the very
bytes of feast/feature_store.yaml) and a CronJob `<recipe>-feast-materialize` running
`feast materialize-incremental` for the recipe's view on `materialize_schedule` (UTC).

Only where the online store is a server (Redis, PostgreSQL: staging and prod, a checked
rule): an sqlite store is a file on one machine, so a pod materialising into it would
fill a file that is gone when the pod ends, and dev's relative registry is not in the
pod either. In dev, `mlops apply` materialises on the workstation.

The container is Feast's own image at the pinned release (contracts.feast.IMAGE), whose
CLI reads the mounted file as it reads it on a workstation: secrets stay `${FEAST_...}`
references in the file, filled from the online store's Secrets, with deploy.secrets
(the cloud credentials of an s3:// or gs:// registry). `concurrencyPolicy: Forbid`: two
runs never write the same rows at once, and a late run catches up on the next (the
incremental end is "now", the start Feast's own last materialised point).
"""

from __future__ import annotations

import shlex
from typing import Any

from framework.contracts import feast
from framework.targets import common
from framework.targets import feature_store as feature_store_target
from framework.targets.kubernetes import jobs, pods

COMPONENT = "features"
CONTAINER = "materialize"
VOLUME = "feature-store"
RESOURCES = ("1", "2Gi")  # the rows since the last run, read from the offline store through pandas
DEADLINE_SECONDS = 3600
RETRIES = 2
START_DEADLINE_SECONDS = 300


def scheduled(recipe) -> bool:
    """Whether the recipe gets the CronJob: Feast, with a shared online store."""
    return feast.enabled(recipe) and recipe.data.source.feast.online_store.type != "sqlite"


def configmap(recipe) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": common.metadata(recipe, common.names(recipe).feast_configmap, COMPONENT),
        "data": {feast.FILE_NAME: feature_store_target.feature_store_yaml(recipe)},
    }


def command(recipe) -> list[str]:
    """`feast materialize-incremental` of the recipe's view up to now. A shell for the end
    timestamp (Feast wants ISO 8601); `exec` lets the CLI's exit code be the pod's."""
    path = f"{feast.MOUNT_DIR}/{feast.FILE_NAME}"
    view = shlex.quote(recipe.data.source.feast.feature_view)
    return ["sh", "-c", f"exec feast --chdir {feast.MOUNT_DIR} --feature-store-yaml {path} "
                        f'materialize-incremental --views {view} "$(date -u +%Y-%m-%dT%H:%M:%S)"']


def cronjob(recipe) -> dict[str, Any]:
    names = common.names(recipe)
    tmp_volume, tmp_mount = pods.tmp_dir()  # HOME and scratch: the root filesystem is read-only
    store_volume = {"name": VOLUME, "configMap": {"name": names.feast_configmap}}
    store_mount = {"name": VOLUME, "mountPath": feast.MOUNT_DIR, "readOnly": True}
    container = pods.container(
        CONTAINER,
        feast.IMAGE,
        command=command(recipe),
        resources=common.resources(*RESOURCES),
        mounts=[tmp_mount, store_mount],
        env=[*pods.PYTHON_ENV, *common.with_feature_store_env(recipe, common.secret_env(recipe))],
    )
    pod = pods.pod_spec(recipe, [container], volumes=[tmp_volume, store_volume], recipe_volume=False,
                        restartPolicy="Never")
    metadata = common.metadata(recipe, names.feast_cronjob, COMPONENT, annotations=pods.workload_skips(pod))
    return jobs.cron_job(recipe, metadata, COMPONENT, recipe.data.source.feast.materialize_schedule, pod,
                         retries=RETRIES, deadline_seconds=DEADLINE_SECONDS,
                         start_deadline_seconds=START_DEADLINE_SECONDS)


def objects(recipe) -> list[dict[str, Any]]:
    """What k8s/feast-materialize.yaml holds, in the order they are needed."""
    return [configmap(recipe), cronjob(recipe)]
