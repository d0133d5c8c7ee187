"""The serving app on an existing Ray cluster, through Serve's REST API (what `serve
deploy` and KubeRay's RayService use): the generated `ray/serve_config.yaml` with the
project uploaded as its working dir, the registered versions to load and the routing
(rollout/live.routing) as the deployment's user_config.

A change of routing alone is a change of user_config: Serve re-routes every running
replica in place (ModelServer.reconfigure). A change of versions restarts replicas.
Each deploy waits until the application runs the config it was sent, healthy.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml

from framework.contracts.resolved import RECIPE_FILE
from framework.errors import MlopsError, Problem

WAIT_S = 300.0
FAILED = {"DEPLOY_FAILED", "UNHEALTHY"}


class ServeCluster:
    """Serve's REST API on the Ray cluster whose dashboard is at `address`."""

    def __init__(self, address: str):
        from framework.runtime.submit import check_version, prepare_auth

        prepare_auth()
        from ray.dashboard.modules.serve.sdk import ServeSubmissionClient

        try:
            self.client = ServeSubmissionClient(address)
        except Exception as exc:  # connection refused, bad URL, auth
            raise MlopsError([Problem(None, "--address", f"cannot reach the Ray dashboard at {address}: {exc}")]) from None
        check_version(self.client, address)
        self.address = address

    def upload(self, folder: Path, excludes: list[str]) -> str:
        """The folder as a package in the cluster's store: its gcs:// URI."""
        runtime_env: dict[str, Any] = {"working_dir": str(folder), "excludes": excludes}
        self.client._upload_working_dir_if_needed(runtime_env)  # what JobSubmissionClient.submit_job does
        return runtime_env["working_dir"]

    def applications(self) -> dict[str, Any]:
        try:
            return self.client.get_serve_details().get("applications") or {}
        except Exception as exc:
            raise MlopsError([Problem(None, "serve", f"Ray Serve at {self.address} did not answer: {exc}")]) from None

    def deploy(self, config: dict[str, Any], wait_s: float = WAIT_S, poll_s: float = 0.5) -> None:
        """PUT the config (Serve keeps applications the config leaves out only if it
        lists them: every application of this cluster is kept), then wait until each
        of its applications runs it."""
        mine = {app["name"] for app in config["applications"]}
        others = [details["deployed_app_config"] for name, details in self.applications().items()
                  if name not in mine and details.get("deployed_app_config")]
        sent = {**config, "applications": [*others, *config["applications"]]}
        try:
            self.client.deploy_applications(sent)
        except Exception as exc:
            raise MlopsError([Problem(None, "serve", f"Ray Serve at {self.address} refused the application: {exc}")]) from None
        for app in config["applications"]:
            self._wait(app, wait_s, poll_s)

    def _wait(self, app: dict[str, Any], wait_s: float, poll_s: float) -> None:
        name = app["name"]
        wanted = [d.get("user_config") for d in app.get("deployments", [])]
        deadline = time.monotonic() + wait_s
        status, message, waiting = "absent", "", []
        while time.monotonic() < deadline:
            details = self.applications().get(name) or {}
            status, message = details.get("status", "absent"), details.get("message", "")
            if status in FAILED:
                broken = [f"{d}: {info.get('message', '')}" for d, info in (details.get("deployments") or {}).items()
                          if info.get("status") != "HEALTHY" and info.get("message")]
                text = "; ".join([message, *broken]).strip("; ")
                text = text if len(text) <= 2400 else f"{text[:800]} ... {text[-1600:]}"
                raise MlopsError([Problem(None, "serve", f"application {name} is {status} on {self.address}: {text}")])
            waiting = [info["message"] for info in (details.get("deployments") or {}).values() if info.get("message")]
            deployed = details.get("deployed_app_config") or {}
            running = [d.get("user_config") for d in deployed.get("deployments", [])]
            healthy = all(info.get("status") == "HEALTHY" for info in (details.get("deployments") or {}).values())
            if status == "RUNNING" and running == wanted and healthy and details.get("deployments"):
                return
            time.sleep(poll_s)
        why = "; ".join([message, *waiting]).strip("; ")
        raise MlopsError([Problem(None, "serve", f"application {name} on {self.address} was not running after "
                                  f"{wait_s:.0f} s (status {status}{': ' + why if why else ''})")])

    def url(self, port: int) -> str:
        return serve_url(self.address, port)


def serve_url(address: str, port: int) -> str:
    """host:port of the cluster's Serve proxy (on the head, as the dashboard)."""
    return f"{urlparse(address).hostname or '127.0.0.1'}:{port}"


def cluster_config(env_dir: Path, root: Path, package: str, versions: list[str], routing: dict[str, Any],
                   state_dir: Path | None = None) -> dict[str, Any]:
    """The generated serve_config.yaml (the bytes the RayService embeds) for a cluster
    that sees only what was uploaded: the recipe read from the working dir, exactly
    `versions` loaded, `routing` as user_config; `state_dir` when the head shares the disk."""
    config = yaml.safe_load((env_dir / "ray" / "serve_config.yaml").read_text(encoding="utf-8"))
    resolved = (env_dir / RECIPE_FILE).relative_to(root).as_posix()
    (app,) = config["applications"]
    app["args"] = {**app.get("args", {}), "recipe": resolved, "versions": [str(v) for v in versions]}
    from framework.runtime.submit import cluster_env_vars

    runtime_env = dict(app.get("runtime_env") or {})
    env_vars = cluster_env_vars(runtime_env.get("env_vars", {}), resolved, state_dir)
    app["runtime_env"] = {**runtime_env, "working_dir": package, "env_vars": env_vars}
    for deployment in app.get("deployments", []):
        deployment["user_config"] = {"routing": routing}
    return config


__all__ = ["ServeCluster", "cluster_config", "serve_url"]
