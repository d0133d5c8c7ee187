"""Kubernetes target: the recipe's core Kubernetes objects under `k8s/`.

Always: the ServiceAccount and the resolved-recipe ConfigMap. For Triton, vLLM and TGI:
the serving Deployment, Service, HPA, PDB and NetworkPolicy (the pods and Service of
Ray Serve and Ray Serve LLM belong to the RayService of the ray target). A PyTorchJob when training.engine is
pytorchjob, a drift CronJob when monitoring.drift is set, the vector store's
PersistentVolumeClaim when the recipe has a `rag` section (its RayJob and RayService
come from the rag target), the batch CronJob (with its launcher's ServiceAccount, Role,
RoleBinding and the batch RayJob's ConfigMap, one multi-document file) when
batch.schedule is set (the RayJob comes from the batch target), the Feast
materialisation CronJob and its feature_store.yaml ConfigMap when data.source.feast
names a Redis or PostgreSQL online store. Istio, Argo Rollouts
and Prometheus objects come from the traffic and monitoring targets.

Pure: builds dicts and dumps them with `common.yaml_text`; imports nothing heavy.
"""

from __future__ import annotations

from typing import Any

from framework.targets import Artifact, common, rag
from framework.targets.kubernetes import basics, jobs, materialize, serving
from framework.targets.kubernetes import batch as batch_schedule
from framework.targets.kubernetes.pods import Port
from framework.targets.kubernetes.serving import server_pod

__all__ = ["DIR", "Port", "render", "objects", "server_pod"]

DIR = "k8s"
BATCH_CRONJOB = "batch-cronjob.yaml"
FEAST_CRONJOB = "feast-materialize.yaml"


def objects(recipe) -> dict[str, dict[str, Any] | list[dict[str, Any]]]:
    """Every object this target generates, by file name under k8s/ (a list: the
    documents of one multi-document file)."""
    result = {
        "serviceaccount.yaml": basics.service_account(recipe),
        "configmap.yaml": basics.recipe_configmap(recipe),
    }
    server = server_pod(recipe)
    if server is not None:
        result.update({
            "deployment.yaml": serving.deployment(recipe, server),
            "service.yaml": serving.service(recipe, server),
            "hpa.yaml": serving.hpa(recipe),
            "pdb.yaml": serving.pdb(recipe),
            "networkpolicy.yaml": serving.network_policy(recipe, server),
        })
    if recipe.training is not None and recipe.training.engine == "pytorchjob":
        result["pytorchjob.yaml"] = jobs.pytorchjob(recipe)
    if recipe.monitoring.drift is not None:
        result["drift-cronjob.yaml"] = jobs.drift_cronjob(recipe)
    if rag.enabled(recipe):
        result[rag.VECTORS_PVC] = rag.vectors_pvc(recipe)
    if batch_schedule.scheduled(recipe):
        result[BATCH_CRONJOB] = batch_schedule.objects(recipe)
    if materialize.scheduled(recipe):
        result[FEAST_CRONJOB] = materialize.objects(recipe)
    return result


def render(recipe) -> list[Artifact]:
    return [
        Artifact(f"{DIR}/{name}", common.yaml_text(recipe, *(docs if isinstance(docs, list) else [docs])))
        for name, docs in sorted(objects(recipe).items())
    ]
