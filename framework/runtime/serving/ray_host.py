"""The Ray Serve ingress deployment `ModelServer`: the serving app in every replica.

Imported only by `framework.runtime.serve.app` (it imports Ray). The ASGI app is built
in the replica (`__serve_build_asgi_app__`), never pickled from the driver: each replica
loads its own ONNX Runtime sessions, batchers and metrics (recorded through
ray.util.metrics too, which Ray's exporter publishes with the `ray_` prefix).
"""

from __future__ import annotations

from ray import serve

from framework.targets.ray import SERVE_DEPLOYMENT


@serve.deployment(name=SERVE_DEPLOYMENT, max_ongoing_requests=256)
@serve.ingress()
class ModelServer:
    def __init__(self, recipe: str, model_repository: str | None = None, state_dir: str | None = None):
        self.recipe = recipe
        self.model_repository = model_repository
        self.state_dir = state_dir

    def __serve_build_asgi_app__(self):
        from framework.runtime.serve import build_app

        return build_app(self.recipe, self.model_repository, self.state_dir, ray_metrics=True)
