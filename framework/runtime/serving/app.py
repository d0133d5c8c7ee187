"""The serving app: one raw ASGI application speaking the KServe v2 / Triton HTTP protocol.

Routes
  GET  /v2/health/live | /v2/health/ready           200 (ready: every model has a version)
  GET  /v2                                          server metadata
  GET  /v2/models/{name}[/versions/{v}]             model metadata
  GET  /v2/models/{name}[/versions/{v}]/ready       200 or 404
  GET  /v2/models/{name}[/versions/{v}]/config      the model configuration (Triton JSON)
  POST /v2/models/{name}[/versions/{v}]/infer       inference (JSON, binary tensor extension)
  POST /v2/models/{name}[/versions/{v}]/feedback    a reward for an answer (bandit rollouts)
  POST /v2/repository/index                         every model version and its state
  GET  /metrics (monitoring.metrics.path)           Prometheus text format

Raw ASGI rather than Starlette/FastAPI: small models are bound by the HTTP and Python
layers, so the hot path is a few string comparisons, orjson and numpy (bench/serve.py
measures it against a FastAPI + ONNX Runtime server). Errors are JSON `{"error": "..."}`
with a 4xx the caller can act on (400 bad request, 404 unknown model/version/route, 405
wrong method, 413 body too large, 415 unknown content encoding); 500 only for failures
of the server itself. Rollout routing is delegated to a `Router` (router.py).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import time
from typing import Any, Callable

from framework.runtime.serving import protocol
from framework.runtime.serving.batcher import DynamicBatcher
from framework.runtime.serving.bodies import decompress, parse_header_length, too_large
from framework.runtime.serving.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from framework.runtime.serving.metrics import ServingMetrics
from framework.runtime.serving.protocol import HttpError
from framework.runtime.serving.repository import Model, Repository
from framework.runtime.serving.request_log import RequestLog, output_widths
from framework.runtime.serving.router import LatestVersionRouter, Router
from framework.runtime.serving.stats import agree

log = logging.getLogger("mlops.serve")

DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
# A model whose largest batch runs faster than this runs on the event loop's thread: the
# hand-off to a worker thread and back (and the GIL changing hands) costs more than that.
INLINE_BELOW_SECONDS = 0.0002
MAX_SHADOWS_IN_FLIGHT = 256  # per app; more shadows than this are dropped, never queued
SERVER_NAME = "mlops"
EXTENSIONS = ["binary_tensor_data", "classification", "model_repository"]
_JSON = b"application/json"
_MODELS = "/v2/models/"
VERSION_HEADER = b"mlops-model-version"


class _Disconnected(Exception):
    pass


def _error(status: int, message: str) -> tuple[int, bytes]:
    return status, protocol.dumps({"error": message})


class ServingApp:
    def __init__(
        self,
        repository: Repository,
        *,
        router: Router | Callable[[Repository], Router] | None = None,
        metrics: ServingMetrics | None = None,
        request_log: RequestLog | None = None,
        model_labels: dict[str, str] | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        metrics_path: str = "/metrics",
        server_version: str = "",
        lookups: dict[str, Any] | None = None,
    ):
        self.repository = repository
        self.models: dict[str, Model] = repository.models
        if router is None:
            router = LatestVersionRouter(repository.versions())
        elif not hasattr(router, "route"):
            router = router(repository)
        self.router = router
        self.metrics = metrics or ServingMetrics()
        self.request_log = request_log
        self.labels = {name: (model_labels or {}).get(name, name) for name in self.models}
        self.max_body_bytes = max_body_bytes
        self.lookups = lookups or {}  # model name -> OnlineLookup (runtime/serving/lookup.py)
        self.metrics_path = metrics_path
        self.batchers: dict[tuple[str, str], DynamicBatcher] = {}
        for name, model in self.models.items():
            config = model.config
            batching = config.dynamic_batching
            for version, loaded in model.versions.items():
                self.batchers[(name, version)] = DynamicBatcher(
                    loaded.runner,
                    max_batch_size=config.max_batch_size,
                    preferred_batch_sizes=batching.preferred_batch_size if batching else (),
                    max_queue_delay_us=batching.max_queue_delay_microseconds if batching else 0,
                    instances=config.instance_count,
                    on_batch=self.metrics.batch,
                    name=f"{name}-{version}",
                    inline=run_inline(loaded.batch_seconds),
                )
            if request_log is not None:
                request_log.describe(self.labels[name], model.columns, output_widths(config))
            self.metrics.loaded(self.labels[name], list(model.versions))
        self._server_metadata = protocol.dumps({"name": SERVER_NAME, "version": server_version, "extensions": EXTENSIONS})
        self._shadows: set[asyncio.Task] = set()
        self.shadows_dropped = 0
        self._weights_at = 0.0
        self.refresh_weights()

    # --- ASGI entry ------------------------------------------------------------------
    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        kind = scope["type"]
        if kind == "http":
            path = scope["path"]
            if path.startswith(_MODELS):
                rest = path[len(_MODELS):]
                name, infer, tail = rest.partition("/infer")
                if infer and not tail and "/" not in name and scope["method"] == "POST":  # the hot path
                    await self._infer(scope, receive, send, name, None)
                else:
                    await self._model_route(scope, receive, send, rest)
            else:
                await self._other_route(scope, receive, send, path)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Callable, send: Callable) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self.startup()
                except Exception as exc:  # report it to the host, which then refuses to start
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def startup(self) -> None:
        if self.request_log is not None:
            self.request_log.start()
        # What was loaded lives as long as the app: keep it out of the garbage collector's
        # scans, which otherwise stall the event loop for tens of ms under load.
        gc.collect()
        gc.freeze()

    async def shutdown(self) -> None:
        for task in list(self._shadows):
            task.cancel()
        if self._shadows:
            await asyncio.gather(*self._shadows, return_exceptions=True)
        loop = asyncio.get_running_loop()
        for batcher in self.batchers.values():
            await loop.run_in_executor(None, batcher.close)
        if self.request_log is not None:
            await loop.run_in_executor(None, self.request_log.close)
        self.metrics.flush()

    # --- routing -----------------------------------------------------------------------
    async def _model_route(self, scope: dict, receive: Callable, send: Callable, rest: str) -> None:
        parts = rest.split("/")
        name, version, i = parts[0], None, 1
        if len(parts) >= 3 and parts[1] == "versions":
            version, i = parts[2], 3
        action = parts[i] if len(parts) > i else ""
        method = scope["method"]
        if len(parts) > i + 1 or action not in ("", "infer", "ready", "config", "feedback"):
            return await _respond(send, *_error(404, f"no route {method} {scope['path']}"))
        if action in ("infer", "feedback"):
            if method != "POST":
                return await _respond(send, *_error(405, f"use POST for {scope['path']}"))
            if action == "feedback":
                return await self._feedback(scope, receive, send, name, version)
            return await self._infer(scope, receive, send, name, version)
        if method not in ("GET", "HEAD"):
            return await _respond(send, *_error(405, f"use GET for {scope['path']}"))
        model, problem = self._find(name, version)
        if problem is not None:
            return await _respond(send, *problem)
        if action == "ready":
            return await _respond(send, 200, b"", b"text/plain")
        if action == "config":
            return await _respond(send, 200, protocol.dumps(model.config_json()))
        return await _respond(send, 200, protocol.dumps(model.metadata(version)))

    async def _other_route(self, scope: dict, receive: Callable, send: Callable, path: str) -> None:
        method = scope["method"]
        if path == "/v2/health/live":
            return await _respond(send, 200, b"", b"text/plain")
        if path == "/v2/health/ready":
            ready = all(model.versions for model in self.models.values())
            return await _respond(send, 200 if ready else 503, b"", b"text/plain")
        if path in ("/v2", "/v2/"):
            return await _respond(send, 200, self._server_metadata)
        if path == "/v2/repository/index":
            if method not in ("POST", "GET"):
                return await _respond(send, *_error(405, "use POST for /v2/repository/index"))
            try:
                body = await self._read_body(scope, receive) if method == "POST" else b""
                options = protocol.loads(body) if body.strip() else {}
            except _Disconnected:
                return
            except HttpError as error:
                return await _respond(send, *_error(error.status, error.message))
            except ValueError as exc:
                return await _respond(send, *_error(400, f"malformed JSON in the request body: {exc}"))
            rows = self.repository.index()
            if isinstance(options, dict) and options.get("ready"):
                rows = [r for r in rows if r["state"] == "READY"]
            return await _respond(send, 200, protocol.dumps(rows))
        if path == self.metrics_path:
            self.refresh_weights()
            return await _respond(send, 200, self.metrics.exposition(), METRICS_CONTENT_TYPE.encode())
        await _respond(send, *_error(404, f"no route {method} {path}; the API is KServe v2 under /v2"))

    def _find(self, name: str, version: str | None) -> tuple[Model | None, tuple[int, bytes] | None]:
        model = self.models.get(name)
        if model is None:
            return None, _error(404, f"unknown model '{name}'; this server serves: {', '.join(self.models)}")
        if version is not None and version not in model.versions:
            loaded = ", ".join(model.versions)
            return None, _error(404, f"model '{name}' has no version '{version}' loaded; loaded versions: {loaded}")
        return model, None

    # --- inference ---------------------------------------------------------------------
    async def _infer(self, scope: dict, receive: Callable, send: Callable, name: str, explicit: str | None) -> None:
        arrived = time.time()
        start = time.perf_counter()
        metrics = self.metrics
        metrics.started()
        version = explicit or ""
        routed = False
        shadow = None
        request = outputs = None
        header_length = None
        infer_s = 0.0
        try:
            model, problem = self._find(name, explicit)
            if problem is not None:
                status, body = problem
            else:
                try:
                    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
                    data = await self._read_body(scope, receive, headers)
                    length = headers.get("inference-header-content-length")
                    lookup = self.lookups.get(name)
                    request = protocol.decode_request(data, parse_header_length(length), model.config, name,
                                                      lookup.request_config if lookup is not None else None)
                    if lookup is not None and request.has_input(lookup.key):  # entity ids: features from the store
                        request.inputs = await lookup.lookup(request.inputs[lookup.key])
                    if explicit is None:
                        version, shadow = self.router.route(name, headers)
                        routed = True
                    batcher = self.batchers.get((name, version))
                    if batcher is None:
                        raise RuntimeError(f"the router chose version '{version}' of model '{name}', which is not loaded")
                    began = time.perf_counter()
                    outputs = await batcher.submit(request.batch_inputs, request.rows)
                    infer_s = time.perf_counter() - began
                    body, header_length = protocol.encode_response(name, version, request, outputs, model.config)
                    status = 200
                except HttpError as error:
                    status, body = _error(error.status, error.message)
                except _Disconnected:
                    status, body = 499, b""
                except Exception as exc:  # the model or router failed: the server's fault
                    log.exception("inference failed for model %s version %s", name, version)
                    status, body = _error(500, f"inference failed: {type(exc).__name__}: {exc}")
            if status != 499:
                # which version answered (or failed): a client judging a rollout across replicas reads it
                answered = ((VERSION_HEADER, version.encode()),) if version else ()
                if header_length is None:
                    await _respond(send, status, body, extra=answered)
                else:
                    await _respond(
                        send, 200, body, b"application/octet-stream",
                        ((b"inference-header-content-length", str(header_length).encode()), *answered),
                    )
        finally:
            metrics.finished()
        latency = time.perf_counter() - start
        if model is not None:
            metrics.request(self.labels[name], version, status, latency)
        if routed:
            self.router.observe(name, version, status < 500, latency)
            if start - self._weights_at > 1.0:
                self.refresh_weights()
        if status == 200:
            log_ = self.request_log
            if log_ is not None and log_.sample():
                log_.add(self.labels[name], version, arrived, latency, request.inputs, outputs)
            if shadow is not None:
                self._start_shadow(name, version, shadow, request, outputs, infer_s)

    async def _read_body(self, scope: dict, receive: Callable, headers: dict[str, str] | None = None) -> bytes:
        if headers is None:
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        limit = self.max_body_bytes
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise HttpError(413, too_large(int(declared), limit))
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected()
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > limit:
                    raise HttpError(413, too_large(size, limit))
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        encoding = headers.get("content-encoding")
        if encoding and encoding != "identity":
            body = decompress(body, encoding.strip().lower(), limit)
        return body

    # --- rewards -----------------------------------------------------------------------
    async def _feedback(self, scope: dict, receive: Callable, send: Callable, name: str, version: str | None) -> None:
        """`{"reward": r}` in [0, 1] for an answer of `version` (from the path, else the
        body's `model_version`: what the infer response said)."""
        try:
            body = await self._read_body(scope, receive)
        except _Disconnected:
            return
        except HttpError as error:
            return await _respond(send, *_error(error.status, error.message))
        await _respond(send, *self._take_feedback(name, version, body))

    def _take_feedback(self, name: str, version: str | None, body: bytes) -> tuple[int, bytes]:
        model, problem = self._find(name, version)
        if problem is not None:
            return problem
        takes = getattr(self.router, "takes_feedback", None)
        if takes is None or not takes(name):
            strategy = getattr(self.router, "strategy", "") or "no rollout"
            return _error(409, f"model '{name}' takes no feedback: its router ({strategy}) does not learn from rewards; "
                               "feedback is for rollout.strategy bandit with reward: feedback")
        try:
            payload = protocol.loads(body)
        except ValueError as exc:
            return _error(400, f"malformed JSON in the request body: {exc}")
        if not isinstance(payload, dict):
            return _error(400, 'the body must be a JSON object: {"model_version": "<v>", "reward": <0..1>}')
        reward = payload.get("reward")
        if isinstance(reward, bool) or not isinstance(reward, (int, float)) or not 0.0 <= reward <= 1.0:
            return _error(400, f"reward must be a number from 0 to 1, got {reward!r}")
        if version is None:
            if payload.get("model_version") is None:
                return _error(400, "name the version that answered: model_version in the body (as the infer response "
                                   f"gave it), or POST /v2/models/{name}/versions/<v>/feedback")
            version = str(payload["model_version"])
            model, problem = self._find(name, version)
            if problem is not None:
                return problem
        self.router.feedback(version, float(reward))
        return 200, protocol.dumps({"model_name": name, "model_version": version, "reward": float(reward)})

    # --- shadows and weights ----------------------------------------------------------
    def _start_shadow(self, name: str, primary: str, shadow: str, request: Any, outputs: dict, infer_s: float) -> None:
        if len(self._shadows) >= MAX_SHADOWS_IN_FLIGHT or (name, shadow) not in self.batchers:
            self.shadows_dropped += 1
            return
        task = asyncio.ensure_future(self._shadow(name, primary, shadow, request, outputs, infer_s))
        self._shadows.add(task)
        task.add_done_callback(self._shadows.discard)

    async def _shadow(self, name: str, primary: str, shadow: str, request: Any, expected: dict, infer_s: float) -> None:
        began = time.perf_counter()
        try:
            outputs = await self.batchers[(name, shadow)].infer(request.inputs, request.rows)
        except asyncio.CancelledError:
            raise
        except Exception:
            seconds = time.perf_counter() - began
            log.warning("shadow inference failed for model %s version %s", name, shadow, exc_info=True)
            self.metrics.request(self.labels[name], shadow, 500, seconds)
            self.router.observe(name, shadow, False, seconds)
            return
        seconds = time.perf_counter() - began
        self.metrics.request(self.labels[name], shadow, 200, seconds)
        self.router.compare(name, primary, shadow, agree(expected, outputs), seconds - infer_s)

    def refresh_weights(self) -> None:
        self._weights_at = time.perf_counter()
        for name in self.models:
            try:
                self.metrics.set_weights(self.labels[name], self.router.weights(name))
            except Exception:  # a router bug must not break /metrics
                log.exception("router.weights(%r) failed", name)


def run_inline(batch_seconds: float) -> bool:
    """Where a model version's batches run; MLOPS_SERVE_INLINE=1 or 0 decides it by hand."""
    forced = os.environ.get("MLOPS_SERVE_INLINE")
    if forced in ("0", "1"):
        return forced == "1"
    return batch_seconds < INLINE_BELOW_SECONDS


async def _respond(
    send: Callable, status: int, body: bytes, content_type: bytes = _JSON, extra: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *extra],
        }
    )
    await send({"type": "http.response.body", "body": body})


__all__ = ["ServingApp", "DEFAULT_MAX_BODY_BYTES"]
