"""The RAG service: `POST /query {question, top_k}` -> `{answer, sources, latency_ms}`.

Retrieves the recipe's chunks (retrieve.py), fills the recipe's prompt template
(`rag.prompt`, with {context} and {question}) and asks the generation endpoint (llm.py:
the recipe's own vLLM server, its CPU fallback, or `rag.llm_endpoint`). Also
`GET /health` and `GET /metrics` with the serving app's metric names
(`mlops_requests_total{model,version,status}`, `mlops_request_duration_seconds`, ...;
model = the recipe's registered model, version = "rag"). Bad requests get a 400 naming
the field. The same ASGI app runs embedded (uvicorn) and on Ray Serve (`app` below,
the import path of the generated serve config).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable

import orjson

from framework.contracts.llm import served_model_name
from framework.contracts.metrics import RAG_VERSION as VERSION
from framework.errors import MlopsError
from framework.runtime.rag.openai_app import BadRequest, answer_lifespan, read_json, respond
from framework.runtime.serving.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from framework.runtime.serving.metrics import ServingMetrics
MAX_QUESTION_CHARS = 4000
EXCERPT_CHARS = 300


def _error(status: int, message: str) -> tuple[int, bytes]:
    return status, orjson.dumps({"error": message})


def build_prompt(template: str, question: str, hits: list) -> str:
    context = "\n\n".join(f"[{i}] ({hit.source}) {hit.text.strip()}" for i, hit in enumerate(hits, 1))
    return template.replace("{context}", context).replace("{question}", question.strip())


class RagApp:
    def __init__(self, recipe, retriever, generator, *, max_tokens: int = 256, metrics: ServingMetrics | None = None):
        self.recipe = recipe
        self.retriever = retriever
        self.generator = generator
        self.template = recipe.rag.prompt
        self.k = recipe.rag.retriever.k
        self.max_top_k = max(recipe.rag.retriever.fetch_k, recipe.rag.retriever.k)
        self.max_tokens = max_tokens
        self.model = recipe.registered_model
        self.metrics = metrics or ServingMetrics()

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await answer_lifespan(scope, receive, send)
        path, method = scope["path"], scope["method"]
        if path == "/health":
            return await respond(send, 200, b"", b"text/plain")
        if path == self.recipe.monitoring.metrics.path:
            return await respond(send, 200, self.metrics.exposition(), METRICS_CONTENT_TYPE.encode())
        if path == "/query":
            if method != "POST":
                return await respond(send, *_error(405, "use POST for /query"))
            return await self._query(receive, send)
        await respond(send, *_error(404, f"no route {method} {path}; ask with POST /query"))

    def _parse(self, body: Any) -> tuple[str, int]:
        if not isinstance(body, dict):
            raise BadRequest('the body must be a JSON object: {"question": "...", "top_k": 4}')
        question = body.get("question")
        if not isinstance(question, str) or not question.strip():
            raise BadRequest("question must be a non-empty string")
        if len(question) > MAX_QUESTION_CHARS:
            raise BadRequest(f"question has {len(question)} characters; ask in at most {MAX_QUESTION_CHARS}")
        top_k = body.get("top_k", self.k)
        if top_k is None:
            top_k = self.k
        if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= self.max_top_k:
            raise BadRequest(f"top_k must be an integer from 1 to {self.max_top_k}, got {top_k!r}")
        return question, top_k

    def answer(self, question: str, top_k: int) -> dict:
        """Retrieve, prompt, generate (blocking: runs in a worker thread)."""
        began = time.perf_counter()
        hits = self.retriever.search(question, top_k)
        retrieved = time.perf_counter()
        prompt = build_prompt(self.template, question, hits)
        text = self.generator.chat([{"role": "user", "content": prompt}], max_tokens=self.max_tokens)
        done = time.perf_counter()
        sources = [{"source": h.source, "title": getattr(h, "title", None), "score": round(float(h.score), 4),
                    "chunk_id": h.chunk_id, "excerpt": h.text.strip()[:EXCERPT_CHARS]} for h in hits]
        return {"answer": str(text).strip(), "sources": sources, "latency_ms": round((done - began) * 1000, 1),
                "retrieval_ms": round((retrieved - began) * 1000, 1), "model": getattr(self.generator, "name", None)}

    async def _query(self, receive: Callable, send: Callable) -> None:
        began = time.perf_counter()
        self.metrics.started()
        status = 200
        try:
            try:
                question, top_k = self._parse(await read_json(receive))
            except BadRequest as error:
                status = 400
                return await respond(send, *_error(400, str(error)))
            except ConnectionError:
                status = 499
                return
            try:
                result = await asyncio.get_running_loop().run_in_executor(None, self.answer, question, top_k)
            except Exception as exc:  # retrieval or generation failed: the server's side
                status = 502 if isinstance(exc, MlopsError) else 500
                return await respond(send, *_error(status, f"answering failed: {exc}"))
            await respond(send, 200, orjson.dumps(result))
        finally:
            self.metrics.finished()
            self.metrics.request(self.model, VERSION, status, time.perf_counter() - began)


def build(recipe, root, llm_endpoint: str | None, served_name: str | None = None, ray_metrics: bool = False,
          state_dir=None, retriever=None) -> RagApp:
    """A RagApp from a recipe: its retriever over the persisted index and a client of
    the generation endpoint (`llm_endpoint`, else rag.llm_endpoint)."""
    from framework.errors import Problem
    from framework.runtime.rag.llm import endpoint_client
    from framework.runtime.rag.retrieve import Retriever
    from framework.runtime.serving.metrics import RayMirror

    url = llm_endpoint or recipe.rag.llm_endpoint
    if not url:
        raise MlopsError([Problem(None, "rag.llm_endpoint", "no generation endpoint: set rag.llm_endpoint or serve the recipe's model")])
    name = served_name or served_model_name(recipe)
    metrics = ServingMetrics(mirror=RayMirror() if ray_metrics else None)
    retriever = retriever or Retriever(recipe, root, state_dir)
    return RagApp(recipe, retriever, endpoint_client(url, name), metrics=metrics)


__all__ = ["RagApp", "build_prompt", "build"]
