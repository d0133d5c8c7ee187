"""Kubernetes target: the recipe's core Kubernetes objects under `k8s/`.

Always: the ServiceAccount and the resolved-recipe ConfigMap. For Triton, vLLM and TGI:
the serving Deployment, Service, HPA, PDB and NetworkPolicy (the pods and Service of
Ray Serve and Ray Serve LLM belong to the RayService of the ray target). A PyTorchJob when training.engine is
pytorchjob, a drift CronJob when monitoring.drift is set, the vector store's
PersistentVolumeClaim when the recipe has a `rag` section (its RayJob and RayService
come from the rag target). Istio, Argo Rollouts and Prometheus objects come from the
traffic and monitoring targets.

Pure: builds dicts and dumps them with `common.yaml_text`; imports nothing heavy.
"""

from __future__ import annotations

from typing import Any

from framework.targets import Artifact, common, rag
from framework.targets.kubernetes import basics, jobs, serving
from framework.targets.kubernetes.pods import Port
from framework.targets.kubernetes.serving import server_pod

__all__ = ["DIR", "Port", "render", "objects", "server_pod"]

DIR = "k8s"


def objects(recipe) -> dict[str, dict[str, Any]]:
    """Every object this target generates, by file name under k8s/."""
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
    return result


def render(recipe) -> list[Artifact]:
    return [Artifact(f"{DIR}/{name}", common.yaml_text(recipe, obj)) for name, obj in sorted(objects(recipe).items())]
