"""A small fake Kubernetes API server for the `apply --target kubernetes` tests: no API
server can run on the dev machine.

It listens on 127.0.0.1 (random port, a thread), records every request (method, path,
query, content type, Authorization, body) and keeps the applied objects by path. It
can be scripted per object, named `plural/name`:
- `progress[...]`: the statuses successive GETs return (the last one sticks);
  unscripted objects read as done (Deployment available, Rollout Healthy, RayJob
  Complete/SUCCEEDED, PyTorchJob Succeeded, RayService Running);
- `fail[(METHOD, ...)]`: answer (code, message) instead;
- `missing_groups`: API groups whose CRDs are not installed (404 for every path);
- `missing_namespaces`: 404 `namespaces "x" not found` for objects in them;
- `discovery`: extra `/apis/<group>/<version>` resource lists, for the discovery
  fallback of kinds the path table does not know.

Collections (`.../namespaces/<ns>/<plural>`) answer a POST (create; a
`metadata.generateName` gets the suffix `00001`, `00002`, ... in creation order, and an
existing name 409) and a GET (list, filtered by a `labelSelector` of `key=value` pairs).
"""

from __future__ import annotations

import copy
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

TOKEN = "fake-token"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    content_type: str
    authorization: str
    body: Any

    @property
    def key(self) -> str:
        """`plural/name` of an object path."""
        return "/".join(self.path.split("/")[-2:])


class FakeKubeApi:
    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.objects: dict[str, dict[str, Any]] = {}
        self.progress: dict[str, list[dict[str, Any]]] = {}
        self.fail: dict[tuple[str, str], tuple[int, str]] = {}
        self.missing_groups: set[str] = set()
        self.missing_namespaces: set[str] = set()
        self.discovery: dict[str, list[dict[str, Any]]] = {}
        self.created = 0  # objects created through a collection (generateName suffixes)
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FakeKubeApi:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def write_kubeconfig(self, path: Path) -> Path:
        return write_kubeconfig(path, self.url)

    # --- what the tests read -----------------------------------------------------------
    def calls(self, *methods: str) -> list[tuple[str, str]]:
        return [(r.method, r.path) for r in self.requests if not methods or r.method in methods]

    def patches(self) -> list[Request]:
        return [r for r in self.requests if r.method == "PATCH"]

    def applied_images(self) -> set[str]:
        """Every `image:` of every object applied (containers, init containers, Ray groups)."""
        found: set[str] = set()

        def walk(node: Any) -> None:
            if isinstance(node, dict):
                for key, value in node.items():
                    found.add(value) if key == "image" and isinstance(value, str) else walk(value)
            elif isinstance(node, list):
                for item in node:
                    walk(item)

        for request in self.patches():
            walk(request.body)
        return found

    # --- answering -----------------------------------------------------------------------
    def answer(self, request: Request) -> tuple[int, Any]:
        with self.lock:
            self.requests.append(request)
            if request.path in ("/version", "/api", "/apis") or request.path in self.discovery:
                return self._discovery(request.path)
            collection = _parse_collection(request.path)
            if collection is not None and request.method in ("GET", "POST"):
                return self._collection(request, *collection)
            parts = _parse(request.path)
            if parts is None:
                return _status(404, "NotFound", "the server could not find the requested resource")
            group, namespace, plural, name = parts
            if (request.method, request.key) in self.fail:
                code, message = self.fail[(request.method, request.key)]
                return _status(code, _REASONS.get(code, "Error"), message)
            if group in self.missing_groups:
                return _status(404, "NotFound", "the server could not find the requested resource")
            if namespace in self.missing_namespaces:
                return _status(404, "NotFound", f'namespaces "{namespace}" not found', {"name": namespace, "kind": "namespaces"})
            return getattr(self, f"_{request.method.lower()}")(request, group, plural, name)

    def _collection(self, request: Request, group: str, namespace: str, plural: str) -> tuple[int, Any]:
        key = ("POST" if request.method == "POST" else "LIST", plural)
        if key in self.fail:
            code, message = self.fail[key]
            return _status(code, _REASONS.get(code, "Error"), message)
        if group in self.missing_groups:
            return _status(404, "NotFound", "the server could not find the requested resource")
        if request.method == "GET":
            wanted = dict(pair.split("=", 1) for pair in request.query.get("labelSelector", "").split(",") if pair)
            items = [obj for path, obj in sorted(self.objects.items()) if path.startswith(request.path + "/")
                     and wanted.items() <= (obj.get("metadata", {}).get("labels") or {}).items()]
            return 200, {"kind": "List", "apiVersion": "v1", "metadata": {}, "items": items}
        new = copy.deepcopy(request.body)
        meta = new.setdefault("metadata", {})
        if not meta.get("name"):
            self.created += 1
            meta["name"] = f"{meta.pop('generateName')}{self.created:05d}"
        path = f"{request.path}/{meta['name']}"
        if path in self.objects:
            return _status(409, "AlreadyExists", f'{_resource(plural, group)} "{meta["name"]}" already exists')
        meta["generation"] = 1
        self.objects[path] = new
        return 201, new

    def _patch(self, request: Request, group: str, plural: str, name: str) -> tuple[int, Any]:
        old = self.objects.get(request.path)
        new = copy.deepcopy(request.body)
        generation = (old or {}).get("metadata", {}).get("generation", 0) + 1
        new.setdefault("metadata", {})["generation"] = generation
        if old and "status" in old:
            new["status"] = old["status"]
        self.objects[request.path] = new
        return 200, new

    def _get(self, request: Request, group: str, plural: str, name: str) -> tuple[int, Any]:
        obj = self.objects.get(request.path)
        if obj is None:
            return _status(404, "NotFound", f'{_resource(plural, group)} "{name}" not found')
        script = self.progress.get(request.key)
        if script:
            obj["status"] = script.pop(0) if len(script) > 1 else script[0]
        else:  # as a healthy controller would report it
            obj["status"] = _done(obj)
        return 200, obj

    def _delete(self, request: Request, group: str, plural: str, name: str) -> tuple[int, Any]:
        if self.objects.pop(request.path, None) is None:
            return _status(404, "NotFound", f'{_resource(plural, group)} "{name}" not found')
        return 200, {"kind": "Status", "apiVersion": "v1", "status": "Success"}

    def _discovery(self, path: str) -> tuple[int, Any]:
        if path == "/version":
            return 200, {"major": "1", "minor": "35", "gitVersion": "v1.35.0"}
        if path == "/api":
            return 200, {"kind": "APIVersions", "versions": ["v1"]}
        if path == "/apis":
            groups = sorted({p.split("/")[2]: p.split("/")[3] for p in self.discovery}.items())
            return 200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
                {"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v}],
                 "preferredVersion": {"groupVersion": f"{g}/{v}", "version": v}} for g, v in groups]}
        group_version = path.removeprefix("/apis/")
        return 200, {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version,
                     "resources": self.discovery[path]}


_REASONS = {401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 409: "Conflict", 422: "Invalid", 500: "InternalError"}


def _status(code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> tuple[int, Any]:
    return code, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
                  "reason": reason, "details": details or {}, "code": code}


def _resource(plural: str, group: str) -> str:
    return f"{plural}.{group}" if group else plural


def _parse(path: str) -> tuple[str, str | None, str, str] | None:
    """(group, namespace, plural, name) of an object path."""
    parts = path.strip("/").split("/")
    if parts[0] == "api" and len(parts) >= 4:
        group, rest = "", parts[2:]
    elif parts[0] == "apis" and len(parts) >= 5:
        group, rest = parts[1], parts[3:]
    else:
        return None
    if len(rest) == 4 and rest[0] == "namespaces":
        return group, rest[1], rest[2], rest[3]
    if len(rest) == 2:
        return group, None, rest[0], rest[1]
    return None


def _parse_collection(path: str) -> tuple[str, str, str] | None:
    """(group, namespace, plural) of a namespaced collection path."""
    parts = path.strip("/").split("/")
    if parts[0] == "api" and len(parts) == 5 and parts[2] == "namespaces":
        return "", parts[3], parts[4]
    if parts[0] == "apis" and len(parts) == 6 and parts[3] == "namespaces":
        return parts[1], parts[4], parts[5]
    return None


def _done(obj: dict[str, Any]) -> dict[str, Any]:
    generation = obj["metadata"]["generation"]
    kind = obj.get("kind")
    if kind == "Deployment":
        n = obj.get("spec", {}).get("replicas", 1)
        return {"observedGeneration": generation, "replicas": n, "updatedReplicas": n, "readyReplicas": n,
                "availableReplicas": n, "conditions": [{"type": "Available", "status": "True"}]}
    if kind == "Rollout":
        return {"observedGeneration": str(generation), "phase": "Healthy"}
    if kind == "RayJob":
        return {"jobDeploymentStatus": "Complete", "jobStatus": "SUCCEEDED"}
    if kind == "PyTorchJob":
        return {"conditions": [{"type": "Succeeded", "status": "True"}]}
    if kind == "RayService":
        return {"serviceStatus": "Running"}
    return {}


def _handler(api: FakeKubeApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out in separate writes

        def _serve(self) -> None:
            split = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            request = Request(self.command, split.path, dict(parse_qsl(split.query)),
                              self.headers.get("Content-Type", ""), self.headers.get("Authorization", ""),
                              json.loads(raw) if raw else None)
            code, body = api.answer(request)
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_PATCH = do_DELETE = do_POST = do_PUT = _serve

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


def write_kubeconfig(path: Path, server: str) -> Path:
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "fake",
        "clusters": [{"name": "fake", "cluster": {"server": server}}],
        "users": [{"name": "tester", "user": {"token": TOKEN}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "tester"}}],
    }), encoding="utf-8")
    return path
