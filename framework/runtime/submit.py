"""`apply --target ray --address URL`: the generated training job, submitted to an
existing Ray cluster through its job API, with its logs streamed and its outcome as
the exit code.

The job is the RayJob's own: the same entrypoint module and runtime_env env vars
(from `ray/rayjob.yaml`), with the project uploaded as the working dir so the job
reads the same `recipe.resolved.yaml` and data.

What is uploaded is a snapshot (`snapshot`): the files Ray would send (UPLOAD_EXCLUDES,
every .gitignore and .rayignore honoured, by Ray's own walk), copied once into a
temporary folder. Ray's client hashes the working dir to name the package and zips it
in separate passes; a file that changes between them (`mlops apply ... > apply.log` in
the project root) gave the job a package name nothing was uploaded under, and Ray
Train's workers failed with "Failed to download runtime_env file package".

Where the job writes is `tracking.uri`: a cluster reaches an MLflow server, not this
machine's disk. The embedded store (sqlite under `.mlops/`) and a state dir on the
client work only when the head sees this project at the same path; apply refuses them
unless told so (`--head-shares-disk`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

import yaml

from framework.contracts.resolved import RECIPE_ENV, RECIPE_FILE
from framework.errors import MlopsError, Problem
from framework.runtime.tracking import COMMIT_ENV, git_commit

# Not uploaded with the working dir: environments, local state, VCS, caches.
UPLOAD_EXCLUDES = [".venv/", ".tools/", ".mlops/", ".git/", "**/__pycache__/", "tests/golden/", "*.egg-info/"]
FINAL = {"SUCCEEDED", "FAILED", "STOPPED"}


def prepare_auth() -> None:
    """RAY_AUTH_TOKEN as Ray's client wants it, before anything imports ray: the client
    sends the token only in token mode, which ray reads once, when it loads."""
    token = os.environ.get("RAY_AUTH_TOKEN")
    if token == "":  # an unset CI secret arrives empty: no token, not an empty one
        os.environ.pop("RAY_AUTH_TOKEN")
    elif token:
        os.environ.setdefault("RAY_AUTH_MODE", "token")


@contextlib.contextmanager
def snapshot(root: Path) -> Iterator[Path]:
    """A copy of what Ray would upload from `root`, in a temporary folder that nothing
    writes to while the client packages it; removed afterwards."""
    prepare_auth()
    from ray._private.runtime_env import packaging  # Ray's own walk: the same files, the same rules

    root = Path(root).resolve()
    include_gitignore = os.environ.get("RAY_RUNTIME_ENV_IGNORE_GITIGNORE", "0") != "1"
    folder = Path(tempfile.mkdtemp(prefix="mlops-job-"))
    copy = folder / root.name

    def take(path: Path) -> None:
        target = copy / path.relative_to(root)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        elif path.is_file():
            shutil.copy2(path, target)

    try:
        quiet = logging.getLogger("mlops.snapshot")  # Ray logs each ignore file it honours; the upload says it again
        quiet.setLevel(logging.WARNING)
        packaging._dir_travel(root, [packaging._get_excludes(root, UPLOAD_EXCLUDES)], take,
                              include_gitignore=include_gitignore, logger=quiet)
        yield copy
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def cluster_env_vars(base: dict[str, Any], resolved: str, state_dir: Path | None = None) -> dict[str, Any]:
    """A job's or Serve app's env vars on a cluster: the generated ones, the recipe read from
    the uploaded working dir, and this machine's state dir only when the head shares the disk."""
    env_vars = {**base, RECIPE_ENV: resolved}
    if state_dir is not None:
        env_vars["MLOPS_STATE_DIR"] = str(Path(state_dir).resolve())
    return env_vars


def job_spec(root: Path, env_dir: Path, state_dir: Path, recipe, register_only: bool = False, *,
             working_dir: Path | None = None, head_shares_disk: bool = False) -> dict[str, Any]:
    """Entrypoint and runtime_env of the submission, taken from the generated RayJob
    (`register_only`: the entrypoint's --register-only, for the CI pipeline).
    working_dir: what is uploaded (a `snapshot` of root; root itself by default);
    head_shares_disk: the job may use this machine's state dir (the embedded store)."""
    rayjob = yaml.safe_load((env_dir / "ray" / "rayjob.yaml").read_text(encoding="utf-8"))
    runtime_env = yaml.safe_load(rayjob["spec"].get("runtimeEnvYAML") or "{}") or {}
    resolved = (env_dir / RECIPE_FILE).relative_to(root).as_posix()
    module = rayjob["spec"]["entrypoint"].split()[2]  # python -m <module> <recipe path in the pod>
    env_vars = cluster_env_vars(runtime_env.get("env_vars", {}), resolved, state_dir if head_shares_disk else None)
    commit = git_commit(root)
    if commit:  # the upload leaves .git out: the run is tagged with the submitter's HEAD
        env_vars[COMMIT_ENV] = commit
    runtime_env.update({"working_dir": str(working_dir or root), "excludes": UPLOAD_EXCLUDES, "env_vars": env_vars})
    flags = " --register-only" if register_only else ""
    return {"entrypoint": f"python -m {module} {resolved}{flags}", "runtime_env": runtime_env}


def local_store(recipe) -> bool:
    """The recipe's runs and registry live in a file on this machine (sqlite or a path)."""
    uri = recipe.tracking.uri
    return uri is None or uri.startswith(("sqlite:", "file:")) or "://" not in uri


def check_version(client, address: str) -> None:
    """A job runs this project on the cluster's Ray: another release pickles and talks differently."""
    from importlib.metadata import version

    theirs = getattr(client, "_server_ray_version", None)  # read by the client's connection check
    ours = version("ray")
    if theirs and theirs.split(".")[:2] != ours.split(".")[:2]:
        raise MlopsError([Problem(None, "--address", f"the Ray cluster at {address} runs Ray {theirs} but this "
                                  f"project runs Ray {ours}: use a cluster of Ray {'.'.join(ours.split('.')[:2])}")])


AGENT_WAIT_S = 120.0  # a head just started: its job agent registers a few seconds after `ray start` returns


def _submit(client, address: str, spec: dict[str, Any]) -> str:
    deadline = time.monotonic() + AGENT_WAIT_S
    while True:
        try:
            return client.submit_job(entrypoint=spec["entrypoint"], runtime_env=spec["runtime_env"])
        except RuntimeError as exc:
            if "No available agent" in str(exc) and time.monotonic() < deadline:
                time.sleep(1.0)
                continue
            raise MlopsError([Problem(None, "--address", f"the Ray cluster at {address} refused the job: {exc}")]) from None


def submit_and_follow(address: str, spec: dict[str, Any], out: TextIO | None = None, poll_s: float = 1.0) -> tuple[str, str]:
    """Submit, print the job's log as it grows; return the final status and the whole log."""
    prepare_auth()
    from ray.job_submission import JobSubmissionClient

    out = out or sys.stdout
    try:
        client = JobSubmissionClient(address)
    except Exception as exc:  # connection refused, bad URL, auth
        raise MlopsError([Problem(None, "--address", f"cannot reach the Ray job API at {address}: {exc}")]) from None
    check_version(client, address)
    job_id = _submit(client, address, spec)
    print(f"submitted Ray job {job_id} to {address}", file=out)
    printed = 0
    try:
        while True:
            status = str(client.get_job_status(job_id).value)
            logs = client.get_job_logs(job_id)
            out.write(logs[printed:])
            out.flush()
            printed = len(logs)
            if status in FINAL:
                return status, logs
            time.sleep(poll_s)
    except KeyboardInterrupt:
        client.stop_job(job_id)  # Ctrl-C stops the job too, rather than orphaning it
        raise
