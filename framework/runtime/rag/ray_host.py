"""The Ray Serve ingress deployment of the RAG service and `app`, the application builder
the generated serve_config imports (`framework.runtime.rag.ray_host:app`; this module
imports Ray). Each replica builds its own RagApp: its retriever opens
the persisted Chroma collection, its client talks to the generation endpoint."""

from __future__ import annotations

import os

from ray import serve

from framework.contracts.resolved import RECIPE_ENV
from framework.runtime.rag.service import build

from framework.contracts.ray import RAG_DEPLOYMENT, RAG_MAX_ONGOING_REQUESTS


@serve.deployment(name=RAG_DEPLOYMENT, max_ongoing_requests=RAG_MAX_ONGOING_REQUESTS)
@serve.ingress()
class RagServer:
    def __init__(self, recipe: str, root: str | None = None, llm_endpoint: str | None = None):
        self.recipe, self.root, self.llm_endpoint = recipe, root, llm_endpoint

    def __serve_build_asgi_app__(self):
        from pathlib import Path

        from framework.runtime.resolved import load_resolved

        recipe = load_resolved(Path(self.recipe))[0]
        return build(recipe, Path(self.root or Path.cwd()), self.llm_endpoint, ray_metrics=True)


def app(args: dict | None = None):
    """Ray Serve application builder: args `{"recipe": <recipe.resolved.yaml>, "root":
    <project root>, "llm_endpoint": <OpenAI/Ollama URL>}`; the ingress deployment builds
    the RagApp in its replica."""
    args = dict(args or {})
    return RagServer.bind(args.get("recipe") or os.environ[RECIPE_ENV], args.get("root"), args.get("llm_endpoint"))
