"""The Ray Serve ingress deployment `ModelServer`: the serving app in every replica.

Imported only by `framework.runtime.serving.host.app` (it imports Ray). The ASGI app is built
in the replica (`__serve_build_asgi_app__`), never pickled from the driver: each replica
loads its own ONNX Runtime sessions, batchers and metrics (recorded through
ray.util.metrics too, which Ray's exporter publishes with the `ray_` prefix).

Routing comes from the deployment's user_config `{"routing": {...}}` (a rollout's
champion, candidate, weight: rollout/live.routing_router) when there is one, else from
the registry's aliases. Serve hands a changed user_config to every replica's
`reconfigure` without restarting it, which is how a rollout on a Ray cluster moves its
weights on all replicas at once.
"""

from __future__ import annotations

from typing import Any

from ray import serve

from framework.contracts.ray import SERVE_DEPLOYMENT, SERVE_MAX_ONGOING_REQUESTS


@serve.deployment(name=SERVE_DEPLOYMENT, max_ongoing_requests=SERVE_MAX_ONGOING_REQUESTS)
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
        from framework.runtime.rollout.live import routing_router
        from framework.runtime.serving.host import _recipe

        return routing_router(_recipe(self.recipe), self.routing)

    def __serve_build_asgi_app__(self):
        from framework.runtime.serving.host import build_app

        self.serving_app = build_app(self.recipe, self.model_repository, self.state_dir, router=self._router(),
                             ray_metrics=True, versions=self.versions)
        return self.serving_app
