"""A RAG recipe on an existing Ray cluster (`apply --target ray --address URL`): the
index job, then the RAG service, the way the training job and the Serve app of a
tabular recipe go there.

- The index job is the RAG index RayJob's entrypoint (`python -m framework.runtime.rag.index`),
  submitted through the job API with a snapshot of the project as its working dir.
- The RAG service is the generated `ray/rag_serve_config.yaml` (the bytes the RayService
  embeds), deployed through Serve's REST API with the project uploaded as its working dir.

The job writes the Chroma collection and every RAG replica opens it: on Kubernetes a
ReadWriteMany volume joins them; on a Ray cluster they meet only on a disk the nodes
share, so this path needs `--head-shares-disk` (the project's own folder, at the same
path on every node). Generation goes to `rag.llm_endpoint`, an OpenAI-compatible server
the replicas reach (the recipe's own vLLM runs on Kubernetes, not on a Ray cluster).
"""

from __future__ import annotations

import shlex
from pathlib import Path

import yaml

from framework.contracts import entrypoints
from framework.contracts.resolved import RECIPE_FILE
from framework.errors import MlopsError, Problem


def check_cluster_rag(recipe, address: str, head_shares_disk: bool) -> str:
    """The generation endpoint; refused up front: no shared disk, no endpoint."""
    if not head_shares_disk:
        raise MlopsError([Problem(None, "rag.vector_store.path", (
            f"the index job and the RAG replicas on the Ray cluster at {address} meet only on a shared disk: pass "
            "--head-shares-disk when every node sees this project at the same path (or apply --target kubernetes, "
            "where a ReadWriteMany volume joins them)"))])
    endpoint = recipe.rag.llm_endpoint
    if not endpoint:
        raise MlopsError([Problem(None, "rag.llm_endpoint", (
            f"the RAG service on the Ray cluster at {address} generates through an OpenAI-compatible server it "
            f"reaches: set rag.llm_endpoint (the recipe's own {recipe.serving.backend} server runs on Kubernetes: "
            "apply --target kubernetes)"))])
    return endpoint


def apply_rag_on_cluster(recipe, root: Path, env_dir: Path, state_dir: Path, address: str, *,
                         head_shares_disk: bool = False, console=None) -> str:
    """Index on the cluster, then serve there; returns where to POST."""
    from framework.runtime.serving.ray_cluster import ServeCluster, serve_url
    from framework.contracts.ray import runtime_env
    from framework.runtime.submit import UPLOAD_EXCLUDES, cluster_env_vars, snapshot, submit_and_follow

    endpoint = check_cluster_rag(recipe, address, head_shares_disk)
    say = (lambda line: console.print(line, markup=False, highlight=False)) if console is not None else (lambda line: None)
    root, state_dir = Path(root).resolve(), Path(state_dir).resolve()
    resolved = (env_dir / RECIPE_FILE).relative_to(root).as_posix()
    env_vars = cluster_env_vars(runtime_env(recipe)["env_vars"], resolved, state_dir)
    index = ["python", "-m", entrypoints.RAG_INDEX, resolved, "--root", str(root), "--state-dir", str(state_dir)]
    with snapshot(root) as working_dir:
        spec = {"entrypoint": shlex.join(index),
                "runtime_env": {"working_dir": str(working_dir), "excludes": UPLOAD_EXCLUDES, "env_vars": env_vars}}
        status, _ = submit_and_follow(address, spec)
        if status != "SUCCEEDED":
            raise MlopsError([Problem(None, "index", f"the Ray job ended {status}: its log is above")])
        cluster = ServeCluster(address)
        package = cluster.upload(working_dir, UPLOAD_EXCLUDES)
    config = yaml.safe_load((env_dir / "ray" / "rag_serve_config.yaml").read_text(encoding="utf-8"))
    (app,) = config["applications"]
    app["args"] = {**app.get("args", {}), "recipe": resolved, "root": str(root), "llm_endpoint": endpoint}
    app["runtime_env"] = {**(app.get("runtime_env") or {}), "working_dir": package, "env_vars": env_vars}
    cluster.deploy(config)
    say(f"serve: {app['name']} runs on {address}")
    return f"RAG served on the Ray cluster: POST http://{serve_url(address, recipe.serving.port)}/query"


__all__ = ["apply_rag_on_cluster", "check_cluster_rag"]
