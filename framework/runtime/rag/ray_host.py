"""The Ray Serve ingress deployment of the RAG service (imported only by
service.app: it imports Ray). Each replica builds its own RagApp: its retriever opens
the persisted Chroma collection, its client talks to the generation endpoint."""

from __future__ import annotations

from ray import serve

from framework.contracts.ray import RAG_DEPLOYMENT, RAG_MAX_ONGOING_REQUESTS


@serve.deployment(name=RAG_DEPLOYMENT, max_ongoing_requests=RAG_MAX_ONGOING_REQUESTS)
@serve.ingress()
class RagServer:
    def __init__(self, recipe: str, root: str | None = None, llm_endpoint: str | None = None):
        self.recipe, self.root, self.llm_endpoint = recipe, root, llm_endpoint

    def __serve_build_asgi_app__(self):
        from pathlib import Path

        from framework.runtime.rag.service import build
        from framework.runtime.resolved import load_resolved

        recipe = load_resolved(Path(self.recipe))[0]
        return build(recipe, Path(self.root or Path.cwd()), self.llm_endpoint, ray_metrics=True)
