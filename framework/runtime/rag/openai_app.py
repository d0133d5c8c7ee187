"""An OpenAI-compatible server around a local Generator (llm.py): the CPU fallback of a
vLLM recipe, answering on the routes vLLM's server has, so the RAG service and any
OpenAI client talk to either unchanged.

  GET  /health                    200
  GET  /v1/models                 the served model
  POST /v1/chat/completions       {model, messages, max_tokens, temperature, stream}
  POST /v1/completions            {model, prompt, max_tokens, temperature, stream}
  GET  /metrics                   mlops_requests_total / mlops_request_duration_seconds
                                  (model = served name, version = "fallback")

`stream: true` answers with server-sent events (`data: {chunk}` ... `data: [DONE]`) as
OpenAI does. Generation runs in a worker thread, one at a time; the event loop keeps
answering health checks meanwhile. Bad requests get 400 with an OpenAI-style error body.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any, Callable

import orjson

from framework.runtime.serving.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from framework.runtime.serving.metrics import ServingMetrics

MAX_BODY_BYTES = 1024 * 1024
VERSION = "fallback"


class BadRequest(Exception):
    pass


def _error(message: str, kind: str = "invalid_request_error") -> bytes:
    return orjson.dumps({"error": {"message": message, "type": kind}})


async def respond(send: Callable, status: int, body: bytes, content_type: bytes = b"application/json") -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def answer_lifespan(scope: dict, receive: Callable, send: Callable) -> None:
    """Nothing to start or stop: acknowledge the host's lifespan messages."""
    if scope["type"] != "lifespan":
        return
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def read_json(receive: Callable, limit: int = MAX_BODY_BYTES) -> Any:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionError("client went away")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BadRequest(f"request body exceeds {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    try:
        return orjson.loads(b"".join(chunks))
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"malformed JSON in the request body: {exc}") from None


def _number(body: dict, key: str, default, low, high, kind=float):
    value = body.get(key, default)
    if value is None:
        value = default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise BadRequest(f"{key} must be a number from {low} to {high}, got {value!r}")
    return kind(value)


class OpenAIApp:
    def __init__(self, generator, *, served_name: str, max_tokens_limit: int = 2048, metrics: ServingMetrics | None = None):
        self.generator = generator
        self.name = served_name
        self.max_tokens_limit = max_tokens_limit
        self.metrics = metrics or ServingMetrics()

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await answer_lifespan(scope, receive, send)
        path, method = scope["path"], scope["method"]
        if path == "/health":
            return await respond(send, 200, b"", b"text/plain")
        if path == "/metrics":
            return await respond(send, 200, self.metrics.exposition(), METRICS_CONTENT_TYPE.encode())
        if path == "/v1/models":
            return await respond(send, 200, orjson.dumps({"object": "list", "data": [
                {"id": self.name, "object": "model", "created": 0, "owned_by": "mlops"}]}))
        if path in ("/v1/chat/completions", "/v1/completions"):
            if method != "POST":
                return await respond(send, 405, _error(f"use POST for {path}"))
            return await self._complete(receive, send, chat=path.endswith("chat/completions"))
        await respond(send, 404, _error(f"no route {method} {path}", "not_found_error"))

    def _parse(self, body: Any, chat: bool) -> tuple[Any, int, float, bool]:
        if not isinstance(body, dict):
            raise BadRequest("the body must be a JSON object")
        model = body.get("model", self.name)
        if model not in (None, self.name):
            raise BadRequest(f"model {model!r} is not served here; this server serves {self.name!r}")
        if chat:
            messages = body.get("messages")
            ok = isinstance(messages, list) and messages and all(
                isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str) for m in messages)
            if not ok:
                raise BadRequest("messages must be a non-empty list of {role, content} objects with string content")
            payload = messages
        else:
            payload = body.get("prompt")
            if isinstance(payload, list) and len(payload) == 1 and isinstance(payload[0], str):
                payload = payload[0]
            if not isinstance(payload, str):
                raise BadRequest("prompt must be a string")
        max_tokens = _number(body, "max_tokens", 256, 1, self.max_tokens_limit, int)
        temperature = _number(body, "temperature", 0.0, 0.0, 2.0)
        return payload, max_tokens, temperature, bool(body.get("stream", False))

    async def _complete(self, receive: Callable, send: Callable, chat: bool) -> None:
        began = time.perf_counter()
        self.metrics.started()
        status = 200
        try:
            try:
                payload, max_tokens, temperature, stream = self._parse(await read_json(receive), chat)
            except BadRequest as error:
                status = 400
                return await respond(send, 400, _error(str(error)))
            except ConnectionError:
                status = 499
                return
            run = self.generator.chat if chat else self.generator.complete
            ident = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex[:24]}"
            loop = asyncio.get_running_loop()
            try:
                if stream:
                    pieces = await loop.run_in_executor(None, lambda: run(payload, max_tokens, temperature, True))
                    await self._stream(send, ident, pieces, chat)
                    return
                text = await loop.run_in_executor(None, lambda: run(payload, max_tokens, temperature, False))
            except Exception as exc:  # the model failed: the server's fault
                status = 500
                return await respond(send, 500, _error(f"generation failed: {type(exc).__name__}: {exc}", "server_error"))
            choice = ({"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"} if chat
                      else {"index": 0, "text": text, "finish_reason": "stop"})
            await respond(send, 200, orjson.dumps({
                "id": ident, "object": "chat.completion" if chat else "text_completion", "created": int(time.time()),
                "model": self.name, "choices": [choice]}))
        finally:
            self.metrics.finished()
            self.metrics.request(self.name, VERSION, status, time.perf_counter() - began)

    async def _stream(self, send: Callable, ident: str, pieces, chat: bool) -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]})
        loop = asyncio.get_running_loop()
        kind = "chat.completion.chunk" if chat else "text_completion"
        created = int(time.time())

        def event(piece: str | None, finish: str | None) -> bytes:
            if chat:
                delta = {"content": piece} if piece is not None else {}
                choice = {"index": 0, "delta": delta, "finish_reason": finish}
            else:
                choice = {"index": 0, "text": piece or "", "finish_reason": finish}
            chunk = {"id": ident, "object": kind, "created": created, "model": self.name, "choices": [choice]}
            return b"data: " + orjson.dumps(chunk) + b"\n\n"

        if chat:
            await send({"type": "http.response.body", "body": event(None, None).replace(b'"delta":{}', b'"delta":{"role":"assistant"}'),
                        "more_body": True})
        while True:
            piece = await loop.run_in_executor(None, next, pieces, None)
            if piece is None:
                break
            await send({"type": "http.response.body", "body": event(piece, None), "more_body": True})
        await send({"type": "http.response.body", "body": event(None, "stop") + b"data: [DONE]\n\n"})


__all__ = ["OpenAIApp", "respond", "read_json", "answer_lifespan", "BadRequest"]
