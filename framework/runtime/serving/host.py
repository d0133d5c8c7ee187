"""The serving app's two hosts: embedded (uvicorn in this process: `mlops serve`, local
apply) and Ray Serve (`framework.runtime.serving.ray_host:app`, the import path of the generated
serve_config.yaml and of the RayService). Both run the same ASGI app
(framework.runtime.serving.app.ServingApp), built by `build_app`.

What it serves: the recipe's model, with the config of framework/contracts/triton.py
(what config.pbtxt says; the file is not read), from the Triton model repository `apply`
filled (`<state_dir>/model_repository/<model>/<version>/`); a recipe without versions
there (serving.backend ray_serve, or a Ray Serve replica on a cluster) gets the versions
the registry's `champion` and `candidate` aliases point at.
"""

from __future__ import annotations

import errno
import os
import socket
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

from framework.errors import MlopsError, Problem


def _recipe(recipe: Any):
    """A Recipe, from a Recipe, a recipe.resolved.yaml path, or None."""
    if recipe is None or hasattr(recipe, "serving"):
        return recipe
    from framework.runtime.resolved import load_resolved

    return load_resolved(Path(recipe))[0]


def state_dir_of(state_dir: str | Path | None) -> Path:
    return Path(state_dir or os.environ.get("MLOPS_STATE_DIR", ".mlops"))


def build_app(
    recipe: Any,
    model_repository: str | Path | None = None,
    state_dir: str | Path | None = None,
    router: Any = None,
    *,
    log_sample_rate: float | None = None,
    max_body_bytes: int | None = None,
    ray_metrics: bool = False,
    versions: list[str] | None = None,
    root: str | Path | None = None,
):
    """The serving app of a recipe (a Recipe or a recipe.resolved.yaml path): its model,
    with the typed config of framework/contracts/triton.py, from `model_repository`
    (default `<state_dir>/model_repository`, what apply filled; without versions there,
    the registry's champion and candidate, fetched). `versions`: exactly these versions
    (from `model_repository` when given, else fetched from the registry); default: the
    versions of a live plan's router (rollout/live.live_router), else the recipe's
    version policy. `router`: a Router, or a callable taking the loaded Repository and
    returning one; default: with no `model_repository`, the registry's champion (and the
    rollout in progress, rollout/live.py); else LatestVersionRouter. `log_sample_rate`
    overrides the recipe's monitoring.metrics.log_sample_rate (0 disables request logging).
    With `data.source.feast`, requests may carry entity ids, looked up in the online store
    (runtime/serving/lookup.py; `root`: the project, default the working directory)."""
    from framework import __version__
    from framework.contracts.feast import enabled as feast_enabled
    from framework.contracts.triton import VersionPolicy, model_config
    from framework.runtime.serving.app import DEFAULT_MAX_BODY_BYTES, ServingApp
    from framework.runtime.serving.metrics import RayMirror, ServingMetrics
    from framework.runtime.serving.repository import load_repository
    from framework.runtime.serving.request_log import RequestLog
    from framework.signature import model_signature

    recipe = _recipe(recipe)
    if recipe is None:
        raise MlopsError([Problem(None, "recipe", "the serving app serves a recipe's model: pass the recipe")])
    if recipe.model.kind != "tabular":
        message = f"the serving app serves tabular models; {recipe.name} is {recipe.model.kind} (served by {recipe.serving.backend})"
        raise MlopsError([Problem(None, "model.kind", message)])
    state = state_dir_of(state_dir)
    config = model_config(recipe, versions if model_repository is not None else None)
    name = config.name
    repo_path = Path(model_repository) if model_repository else state / "model_repository"
    if model_repository is None:
        if versions or not _has_versions(repo_path / name, config.default_model_filename):
            from framework.runtime.serving.registry_source import fill_from_registry

            repo_path = fill_from_registry(recipe, state, name, config.default_model_filename, versions)
            config = replace(config, version_policy=VersionPolicy("all"))  # exactly what was fetched
        if router is None:  # the registry's champion, and the candidate while a rollout runs
            from framework.runtime.serving.live import live_plan, live_router

            router = live_router(recipe, live_plan(recipe, state))
    sample_rate = recipe.monitoring.metrics.log_sample_rate if log_sample_rate is None else log_sample_rate
    repository = load_repository(repo_path, {name: config}, {name: model_signature(recipe).columns})
    request_log = RequestLog(state / "requests", sample_rate) if sample_rate > 0 else None
    lookups = {}
    if feast_enabled(recipe):
        from framework.runtime.serving.lookup import OnlineLookup

        lookups[name] = OnlineLookup(recipe, Path(root) if root else Path.cwd(), config)
    return ServingApp(
        repository,
        router=router,
        # Standing in for the recipe's Triton: its series too, which the generated queries read.
        metrics=ServingMetrics(mirror=RayMirror() if ray_metrics else None,
                               triton={recipe.registered_model: name} if recipe.serving.backend == "triton" else None),
        request_log=request_log,
        model_labels={name: recipe.registered_model},
        max_body_bytes=max_body_bytes or DEFAULT_MAX_BODY_BYTES,
        metrics_path=recipe.monitoring.metrics.path,
        server_version=__version__,
        lookups=lookups,
    )


def _has_versions(model_dir: Path, filename: str) -> bool:
    return model_dir.is_dir() and any(
        p.is_dir() and p.name.isdigit() and (p / filename).is_file() for p in model_dir.iterdir()
    )


# --- embedded host: uvicorn in this process ------------------------------------------
def listen(host: str, port: int) -> socket.socket:
    """A listening socket, or one error line saying why not (port taken, bad host)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        hint = "; pick another with --port" if exc.errno == errno.EADDRINUSE else ""
        raise MlopsError([Problem(None, "--port", f"cannot listen on {host}:{port}: {exc.strerror or exc}{hint}")]) from None
    return sock


def _server(app, sock: socket.socket):
    import uvicorn

    config = uvicorn.Config(
        app, lifespan="on", log_level="warning", access_log=False, timeout_graceful_shutdown=5, backlog=2048,
        server_header=False, date_header=False, proxy_headers=False,
    )
    return uvicorn.Server(config)


def serve_forever(app, host: str, port: int, on_ready: Callable[[str], None] | None = None) -> None:
    """Serve in the foreground until Ctrl-C (or SIGTERM); returns once everything stopped."""
    sock = listen(host, port)
    server = _server(app, sock)
    bound_port = sock.getsockname()[1]
    if on_ready is not None:
        on_ready(f"http://{host if ':' not in host else f'[{host}]'}:{bound_port}")
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn re-raises the captured Ctrl-C after its clean shutdown
        pass
    finally:
        sock.close()


class EmbeddedServer:
    """The embedded host in a background thread (tests, benchmarks, local rollouts)."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0):
        self.app = app
        self.sock = listen(host, port)
        self.host = host
        self.port = self.sock.getsockname()[1]
        self.server = _server(app, self.sock)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    @property
    def url(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> "EmbeddedServer":
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started and self.thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not self.server.started:
            raise MlopsError(f"the embedded server did not start on {self.url}")
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)
        self.sock.close()

    def __enter__(self) -> "EmbeddedServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


__all__ = ["build_app", "serve_forever", "EmbeddedServer", "listen"]
