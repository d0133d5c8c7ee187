"""Ray: connects generate (the RayJobs, Serve configs and RayServices of targets/ray.py,
rag.py and batch.py) and the runtime on a Ray cluster (the Serve ingress deployments
of runtime/serving/ray_host.py and runtime/rag/ray_host.py, and the jobs and Serve apps
the runtime submits itself: runtime/submit.py, batch/cluster.py, rag/cluster.py,
serving/ray_cluster.py).

A Serve config's `deployments` overrides apply to a deployment by name (Serve rejects
unknown names), so the names the runtime declares are the ones the targets write.
"""

from __future__ import annotations

from typing import Any

from framework.contracts.resolved import RECIPE_ENV, recipe_path_in_pod

SERVE_DEPLOYMENT = "ModelServer"  # the tabular serving app's ingress (framework.runtime.serving.ray_host:app)
SERVE_MAX_ONGOING_REQUESTS = 256  # ModelServer's own default; the app sets serving.max_ongoing_requests
RAG_DEPLOYMENT = "RagServer"  # the RAG service's ingress (framework.runtime.rag.ray_host:app)
RAG_MAX_ONGOING_REQUESTS = 64  # what RagServer declares and its Serve config sets; answers wait on generation, not CPU


def runtime_env(recipe) -> dict[str, Any]:
    """Environment of a job's driver, its workers and the Serve replicas. Only plain
    values: secrets come from the pod env (secretKeyRef), which Ray workers inherit,
    so a token never lands in the RayJob spec or the Serve config. A submission from
    this machine replaces the recipe's path (runtime/submit.cluster_env_vars)."""
    env = {RECIPE_ENV: recipe_path_in_pod(), "RAY_USAGE_STATS_ENABLED": "0"}
    if recipe.tracking.uri:
        env["MLFLOW_TRACKING_URI"] = recipe.tracking.uri
    return {"env_vars": env}


__all__ = ["SERVE_DEPLOYMENT", "SERVE_MAX_ONGOING_REQUESTS", "RAG_DEPLOYMENT", "RAG_MAX_ONGOING_REQUESTS", "runtime_env"]
