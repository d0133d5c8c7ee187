"""`apply --target ray --address URL`: the generated training job, submitted to an
existing Ray cluster through its job API, with its logs streamed and its outcome as
the exit code.

The job is the RayJob's own: the same entrypoint module and runtime_env env vars
(from `ray/rayjob.yaml`), with the project uploaded as the working dir so the job
reads the same `recipe.resolved.yaml` and data. Where the job writes MLflow runs is
`tracking.uri`; with the embedded default the store is this project's `.mlops/`,
which only a cluster on this machine can reach (say so rather than lose the run).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import yaml

from framework.errors import MlopsError, Problem

# Not uploaded with the working dir: environments, local state, VCS, caches.
UPLOAD_EXCLUDES = [".venv/", ".tools/", ".mlops/", ".git/", "**/__pycache__/", "tests/golden/", "*.egg-info/"]
FINAL = {"SUCCEEDED", "FAILED", "STOPPED"}


def job_spec(root: Path, env_dir: Path, state_dir: Path, recipe, register_only: bool = False) -> dict[str, Any]:
    """Entrypoint and runtime_env of the submission, taken from the generated RayJob
    (`register_only`: the entrypoint's --register-only, for the CI pipeline)."""
    rayjob = yaml.safe_load((env_dir / "ray" / "rayjob.yaml").read_text(encoding="utf-8"))
    runtime_env = yaml.safe_load(rayjob["spec"].get("runtimeEnvYAML") or "{}") or {}
    resolved = (env_dir / "recipe.resolved.yaml").relative_to(root).as_posix()
    module = rayjob["spec"]["entrypoint"].split()[2]  # python -m <module> <recipe path in the pod>
    env_vars = dict(runtime_env.get("env_vars", {}))
    env_vars["MLOPS_RECIPE"] = resolved
    if recipe.tracking.uri is None:
        env_vars["MLOPS_STATE_DIR"] = str(state_dir.resolve())
    runtime_env.update({"working_dir": str(root), "excludes": UPLOAD_EXCLUDES, "env_vars": env_vars})
    flags = " --register-only" if register_only else ""
    return {"entrypoint": f"python -m {module} {resolved}{flags}", "runtime_env": runtime_env}


def submit_and_follow(address: str, spec: dict[str, Any], out: TextIO | None = None, poll_s: float = 1.0) -> tuple[str, str]:
    """Submit, print the job's log as it grows; return the final status and the whole log."""
    token = os.environ.get("RAY_AUTH_TOKEN")
    if token == "":  # an unset CI secret arrives empty: no token, not an empty one
        os.environ.pop("RAY_AUTH_TOKEN")
    elif token:  # Ray's client sends the token only in token mode (read when ray loads)
        os.environ.setdefault("RAY_AUTH_MODE", "token")
    from ray.job_submission import JobSubmissionClient

    out = out or sys.stdout
    try:
        client = JobSubmissionClient(address)
    except Exception as exc:  # connection refused, bad URL, auth
        raise MlopsError([Problem(None, "--address", f"cannot reach the Ray job API at {address}: {exc}")]) from None
    job_id = client.submit_job(entrypoint=spec["entrypoint"], runtime_env=spec["runtime_env"])
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
