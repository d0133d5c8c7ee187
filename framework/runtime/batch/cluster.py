"""`mlops batch ... --address URL`: the same scoring as a job on an existing Ray cluster,
submitted through its job API like `apply --target ray` (a snapshot of the project as
the working dir, the job's log streamed here, its outcome the exit code). The job is
the batch RayJob's entrypoint, `python -m framework.runtime.batch`, on the cluster's Ray.

The cluster reads the input, the model (from the registry) and writes the output: they
must be where it reaches them. URIs (s3://, gs://, ...) always are; this machine's
paths and embedded store only when the head shares the disk (`--head-shares-disk`),
and then they are handed over as absolute paths.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from framework.contracts import entrypoints
from framework.contracts.resolved import RECIPE_FILE
from framework.errors import MlopsError, Problem

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def _cluster_uri(flag: str, uri: str, address: str, head_shares_disk: bool) -> str:
    if _SCHEME.match(uri) and not uri.startswith("file://"):
        return uri
    if not head_shares_disk:
        raise MlopsError([Problem(None, flag, f"{uri} is on this machine, which the job on the Ray cluster at {address} "
                                  "cannot read: give a URI it reaches (s3://, gs://, ...), or pass --head-shares-disk "
                                  "when the head sees this machine's disk at the same paths")])
    return str(Path(uri.removeprefix("file://")).resolve())


def entrypoint(resolved: str, input_uri: str, output_uri: str, version: str | None, alias: str | None,
               overwrite: bool) -> str:
    words = ["python", "-m", entrypoints.BATCH, resolved, "--input", input_uri, "--output", output_uri]
    if version is not None:
        words += ["--version", str(version)]
    if alias is not None:
        words += ["--alias", alias]
    if overwrite:
        words.append("--overwrite")
    return shlex.join(words)


def batch_on_cluster(recipe, root: Path, env_dir: Path, state_dir: Path, input_uri: str, output_uri: str, address: str,
                     *, version: str | None = None, alias: str | None = None, overwrite: bool = False,
                     head_shares_disk: bool = False) -> str:
    """Submit the batch job and follow it; returns its log. Refused up front: another
    version/alias pair, paths or a store the cluster cannot reach."""
    from framework.contracts.ray import runtime_env as cluster_env
    from framework.runtime.submit import UPLOAD_EXCLUDES, cluster_env_vars, local_store, snapshot, submit_and_follow

    if version is not None and alias is not None:
        raise MlopsError([Problem(None, "--version", "and --alias both pick the model: pass one")])
    input_uri = _cluster_uri("--input", input_uri, address, head_shares_disk)
    output_uri = _cluster_uri("--output", output_uri, address, head_shares_disk)
    if local_store(recipe) and not head_shares_disk:
        store = recipe.tracking.uri or "the embedded store under .mlops/"
        raise MlopsError([Problem(None, "tracking.uri", f"the job on the Ray cluster at {address} reads the model from "
                                  f"the registry, and cannot read {store} on this machine: set tracking.uri to an MLflow "
                                  "server it reaches, or pass --head-shares-disk")])
    resolved = (env_dir / RECIPE_FILE).relative_to(root).as_posix()
    runtime_env = cluster_env(recipe)
    env_vars = cluster_env_vars(runtime_env.get("env_vars", {}), resolved, state_dir if head_shares_disk else None)
    with snapshot(root) as working_dir:
        spec = {"entrypoint": entrypoint(resolved, input_uri, output_uri, version, alias, overwrite),
                "runtime_env": {**runtime_env, "working_dir": str(working_dir), "excludes": UPLOAD_EXCLUDES,
                                "env_vars": env_vars}}
        status, log = submit_and_follow(address, spec)
    if status != "SUCCEEDED":
        raise MlopsError([Problem(None, "batch", f"the Ray job ended {status}: its log is above")])
    return log
