"""The Ray Serve ingress deployment `ModelServer`: the serving app in every replica.

`app` is the application builder the generated serve_config imports
(`framework.runtime.serving.ray_host:app`); this module imports Ray. The ASGI app is built
in the replica (`__serve_build_asgi_app__`), never pickled from the driver: each replica
loads its own ONNX Runtime sessions, batchers and metrics (recorded through
ray.util.metrics too, which Ray's exporter publishes with the `ray_` prefix).

Routing comes from the deployment's user_config `{"routing": {...}}` (a rollout's
champion, candidate, weight: serving/live.routing_router) when there is one, else from
the registry's aliases. Serve hands a changed user_config to every replica's
`reconfigure` without restarting it, which is how a rollout on a Ray cluster moves its
weights on all replicas at once.
"""

from __future__ import annotations

import os
from typing import Any

from ray import serve

from framework.contracts.ray import SERVE_DEPLOYMENT, SERVE_LOGGING, SERVE_MAX_ONGOING_REQUESTS
from framework.contracts.resolved import RECIPE_ENV
from framework.errors import MlopsError, Problem
from framework.runtime.serving.host import _recipe, build_app


@serve.deployment(name=SERVE_DEPLOYMENT, max_ongoing_requests=SERVE_MAX_ONGOING_REQUESTS, logging_config=SERVE_LOGGING)
@serve.ingress()
class ModelServer:
    def __init__(self, recipe: str, model_repository: str | None = None, state_dir: str | None = None,
                 versions: list[str] | None = None):
        self.recipe = recipe
        self.model_repository = model_repository
        self.state_dir = state_dir
        self.versions = versions
        self.routing: dict[str, Any] = {}
        self.serving_app = None

    def reconfigure(self, config: dict[str, Any] | None) -> None:
        self.routing = dict((config or {}).get("routing") or {})
        if self.serving_app is not None:
            self.serving_app.router = self._router()(self.serving_app.repository)
            self.serving_app.refresh_weights()

    def _router(self):
        if not self.routing:
            return None  # the registry's aliases (rollout/live.live_plan)
        from framework.runtime.serving.live import routing_router

        return routing_router(_recipe(self.recipe), self.routing)

    def __serve_build_asgi_app__(self):
        self.serving_app = build_app(self.recipe, self.model_repository, self.state_dir, router=self._router(),
                             ray_metrics=True, versions=self.versions)
        return self.serving_app


def app(args: dict | None = None):
    """Ray Serve application builder (serve_config.yaml: `framework.runtime.serving.ray_host:app`,
    args `{"recipe": <recipe.resolved.yaml>}`; optional `model_repository`, `state_dir`,
    `versions` (the registered versions to load). The ingress deployment `ModelServer`
    builds the ASGI app in each replica; its user_config `routing` (rollout/live.py)
    re-routes every replica in place."""
    args = dict(args or {})
    recipe_path = args.get("recipe") or os.environ.get(RECIPE_ENV)
    if not recipe_path:
        raise MlopsError([Problem(None, "args.recipe", "the Ray Serve app needs args.recipe: a recipe.resolved.yaml path")])
    recipe = _recipe(recipe_path)
    ongoing = getattr(recipe.serving, "max_ongoing_requests", SERVE_MAX_ONGOING_REQUESTS)
    return ModelServer.options(max_ongoing_requests=ongoing).bind(
        str(recipe_path), args.get("model_repository"), args.get("state_dir"),
        [str(v) for v in args.get("versions") or []] or None,
    )
