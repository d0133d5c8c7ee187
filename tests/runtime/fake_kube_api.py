"""A fake Kubernetes API server for the `apply --target kubernetes` tests (no API server
can run on the dev machine), strict where kube-apiserver is strict about what apply uses.

It listens on 127.0.0.1 (random port, a thread), records every request (method, path,
query, content type, Authorization, User-Agent, body) and keeps the objects by path.

As kube-apiserver does (fake_kube_writes holds the write path):
- it serves the built-in kinds apply writes (and a few more) and the CRDs installed:
  by default every vendored one (vendor/crds/jsonschema), at the versions vendored;
  `uninstall(group)` and `install(Crd(...))` change that. Discovery (`/api`, `/apis`,
  `/apis/<group>`, `/apis/<group>/<version>`) says the same; any path of a group or
  version not served, discovery included, is a 404;
- PATCH is server-side apply only (`application/apply-patch+yaml`, `fieldManager`
  required): the applied configuration is merged into the live object with field
  ownership in `metadata.managedFields`; a field another manager owns and the applier
  changes is a 409 Conflict unless `force=true`; fields the manager applied before and
  leaves out now are removed. `edit(path, changes, manager)` writes as another manager
  (kubectl edit, a controller) does;
- objects are validated against the schemas the target tests use (422 Invalid; a
  field not in the schema fails an apply with a 500, as in kube);
- `metadata.generation` starts at 1 and moves only when the spec changes;
  `resourceVersion`, `uid` and `creationTimestamp` are set as kube sets them;
- DELETE of an object with finalizers marks it (`deletionTimestamp`) and keeps it for
  `finalize_gets` GETs (None: forever, a stuck finalizer); `finalizers[plural/name]`
  are the finalizers a controller puts on that object when it is created.
  `propagationPolicy=Foreground` adds `foregroundDeletion`, which the fake's garbage
  collector (no dependents to wait for) clears at once.
Collections (`.../namespaces/<ns>/<plural>`) answer a POST (create; a
`metadata.generateName` gets the suffix `00001`, `00002`, ... in creation order, and an
existing name 409) and a GET (list, filtered by a `labelSelector` of `key=value` pairs).

Scripted, per object named `plural/name`:
- `progress[...]`: the statuses successive GETs return (the last one sticks; `GONE`:
  someone deleted it); unscripted objects read as done (Deployment available, Rollout
  Healthy, RayJob Complete/SUCCEEDED, PyTorchJob Succeeded, RayService Running);
- `fail[(METHOD, ...)]`: answer (code, message) instead (`("POST", plural)` and
  `("LIST", plural)` for collections);
- `missing_namespaces`: creating an object in one is a 404 `namespaces "x" not found`.
"""

from __future__ import annotations

import copy
import json
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import yaml

from tests.runtime import fake_kube_writes as writes

TOKEN = "fake-token"
CRD_SCHEMAS = Path(__file__).resolve().parents[2] / "vendor" / "crds" / "jsonschema"
APPLY_PATCH = "application/apply-patch+yaml"
GONE = None  # a `progress` step: the object was deleted by someone else
NOT_FOUND = "the server could not find the requested resource"
VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]

# (group, versions (preferred first), kind, plural, namespaced): what Kubernetes 1.35
# serves of the kinds generate writes, and a few more
BUILTINS = [
    ("", ("v1",), "Namespace", "namespaces", False),
    ("", ("v1",), "ServiceAccount", "serviceaccounts", True),
    ("", ("v1",), "ConfigMap", "configmaps", True),
    ("", ("v1",), "Secret", "secrets", True),
    ("", ("v1",), "Service", "services", True),
    ("", ("v1",), "PersistentVolumeClaim", "persistentvolumeclaims", True),
    ("", ("v1",), "Pod", "pods", True),
    ("apps", ("v1",), "Deployment", "deployments", True),
    ("apps", ("v1",), "StatefulSet", "statefulsets", True),
    ("batch", ("v1",), "Job", "jobs", True),
    ("batch", ("v1",), "CronJob", "cronjobs", True),
    ("autoscaling", ("v2", "v1"), "HorizontalPodAutoscaler", "horizontalpodautoscalers", True),
    ("policy", ("v1",), "PodDisruptionBudget", "poddisruptionbudgets", True),
    ("networking.k8s.io", ("v1",), "NetworkPolicy", "networkpolicies", True),
    ("rbac.authorization.k8s.io", ("v1",), "Role", "roles", True),
    ("rbac.authorization.k8s.io", ("v1",), "RoleBinding", "rolebindings", True),
    ("rbac.authorization.k8s.io", ("v1",), "ClusterRole", "clusterroles", False),
    ("rbac.authorization.k8s.io", ("v1",), "ClusterRoleBinding", "clusterrolebindings", False),
]
# The vendored schemas are named by the lower-cased kind (kubeconform's layout): the kinds.
VENDORED_KINDS = {k.lower(): k for k in ("RayJob", "RayService", "PyTorchJob", "VirtualService", "DestinationRule",
                                         "ServiceMonitor", "PrometheusRule", "Rollout", "AnalysisTemplate")}


@dataclass(frozen=True)
class Crd:
    """A CustomResourceDefinition the fake serves: its kind at each served version, with
    the JSON Schema objects must match (a file, a schema, or None: anything goes)."""

    group: str
    kind: str
    versions: dict[str, Any]
    plural: str = ""  # default: the lower-cased kind + "s", as every vendored CRD has it
    namespaced: bool = True

    @property
    def resource(self) -> str:
        return self.plural or f"{self.kind.lower()}s"


def vendored_crds() -> list[Crd]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted(CRD_SCHEMAS.glob("*/*.json")):
        kind, version = path.stem.rsplit("_", 1)
        found.setdefault((path.parent.name, VENDORED_KINDS[kind]), {})[version] = path
    return [Crd(group, kind, versions) for (group, kind), versions in found.items()]


@dataclass(frozen=True)
class Served:
    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    schema: Any  # "builtin" (kubernetes-validate), a Path, a schema, or None

    @property
    def resource(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


@dataclass(frozen=True)
class Target:
    """What a request path names: a collection (name None) or an object."""

    group: str
    version: str
    namespace: str | None
    plural: str
    name: str | None


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    content_type: str
    authorization: str
    body: Any
    user_agent: str = ""

    @property
    def key(self) -> str:
        """`plural/name` of an object path."""
        return "/".join(self.path.split("/")[-2:])


class FakeKubeApi:
    def __init__(self, crds: Iterable[Crd] | None = None) -> None:
        self.crds: list[Crd] = list(vendored_crds() if crds is None else crds)
        self.requests: list[Request] = []
        self.objects: dict[str, dict[str, Any]] = {}
        self.progress: dict[str, list[dict[str, Any] | None]] = {}
        self.fail: dict[tuple[str, str], tuple[int, str]] = {}
        self.missing_namespaces: set[str] = set()
        self.finalizers: dict[str, list[str]] = {}
        self.finalize_gets: int | None = 3
        self._terminating: dict[str, int | None] = {}  # path -> GETs it has left
        self.created = 0  # objects created through a collection (generateName suffixes)
        self.revision = 0  # the last resourceVersion
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

    # --- what the tests change -------------------------------------------------------------
    def install(self, crd: Crd) -> None:
        """Install a CRD (replacing the one of its group and kind)."""
        self.uninstall(crd.group, crd.kind)
        self.crds.append(crd)

    def uninstall(self, group: str, kind: str | None = None) -> None:
        self.crds = [c for c in self.crds if not (c.group == group and kind in (None, c.kind))]

    def edit(self, path: str, changes: dict[str, Any], manager: str = "kubectl-edit") -> dict[str, Any]:
        """Change a live object (a JSON merge patch) as an Update by `manager` (kubectl edit
        or scale, a controller) does: it takes the fields it changed from their owners."""
        with self.lock:
            live = self.objects[path]
            new = copy.deepcopy(live)
            _merge_patch(new, changes)
            return self._write(path, live, writes.update(live, new, manager, _now()))

    # --- what the tests read -----------------------------------------------------------------
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

    def managers(self, path: str) -> dict[str, set[str]]:
        """`manager (operation)` -> the paths it owns (.spec.replicas), of a live object."""
        return {f"{e['manager']} ({e['operation']})": {writes.printable(p) for p in e["paths"]}
                for e in writes.entries(self.objects[path])}

    # --- answering -------------------------------------------------------------------------------
    def answer(self, request: Request) -> tuple[int, Any]:
        with self.lock:
            self.requests.append(request)
            found = self._discovery(request.path) if request.method == "GET" else None
            if found is not None:
                return found
            target = _parse(request.path)
            served = self._served(target.group, target.version, target.plural) if target else None
            if target is None or served is None or served.namespaced != (target.namespace is not None):
                return writes.status(404, "NotFound", NOT_FOUND)
            collection = ("POST" if request.method == "POST" else "LIST", target.plural)
            scripted = (request.method, request.key) if target.name else collection
            if scripted in self.fail:
                code, message = self.fail[scripted]
                return writes.status(code, _REASONS.get(code, "Error"), message)
            if target.name is None and request.method in ("GET", "POST"):
                return self._list(request) if request.method == "GET" else self._create(request, target, served)
            if target.name is not None and request.method in ("GET", "PATCH", "DELETE"):
                return getattr(self, f"_{request.method.lower()}")(request, target, served)
            return writes.status(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    def _list(self, request: Request) -> tuple[int, Any]:
        wanted = dict(pair.split("=", 1) for pair in request.query.get("labelSelector", "").split(",") if pair)
        items = [obj for path, obj in sorted(self.objects.items()) if path.startswith(request.path + "/")
                 and wanted.items() <= (obj.get("metadata", {}).get("labels") or {}).items()]
        return 200, {"kind": "List", "apiVersion": "v1", "metadata": {"resourceVersion": str(self.revision)}, "items": items}

    def _create(self, request: Request, target: Target, served: Served) -> tuple[int, Any]:
        new = copy.deepcopy(request.body) if isinstance(request.body, dict) else {}
        meta = new.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            self.created += 1
            meta["name"] = f"{meta['generateName']}{self.created:05d}"
        if not meta.get("name"):
            return writes.invalid(served.group, served.kind, "", [
                ("FieldValueRequired", "metadata.name", "Required value: name or generateName is required")])
        path = f"{request.path}/{meta.get('name')}"
        if path in self.objects:
            deleting = "object is being deleted: " if path in self._terminating else ""
            return writes.status(409, "AlreadyExists", f'{deleting}{served.resource} "{meta["name"]}" already exists',
                                 {"name": meta["name"], "group": served.group, "kind": served.plural})
        refused = self._missing_namespace(target) or self._invalid(new, served)
        if refused:
            return refused
        manager = request.query.get("fieldManager") or request.user_agent.split("/")[0] or "unknown"
        return 201, self._create_object(path, target, writes.update({}, new, manager, _now()))

    def _patch(self, request: Request, target: Target, served: Served) -> tuple[int, Any]:
        if request.content_type.split(";")[0].strip() != APPLY_PATCH:
            return writes.status(415, "UnsupportedMediaType", "the body of the request was in an unknown format - "
                                 "accepted media types include: application/json-patch+json, "
                                 "application/merge-patch+json, application/apply-patch+yaml")
        manager = request.query.get("fieldManager", "")
        if not manager:
            return writes.status(422, "Invalid", 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
                                 "is required for apply patch", {"group": "meta.k8s.io", "kind": "PatchOptions", "causes": [
                                     {"reason": "FieldValueRequired", "message": "Required value: is required for apply patch",
                                      "field": "fieldManager"}]})
        applied = request.body if isinstance(request.body, dict) else {}
        meta = applied.get("metadata") or {}
        if meta.get("managedFields") is not None:
            return writes.status(400, "BadRequest", "metadata.managedFields must be nil")
        if meta.get("name") != target.name:
            return writes.status(400, "BadRequest", f"the name of the object ({meta.get('name')}) does not match the "
                                 f"name on the URL ({target.name})")
        live = self.objects.get(request.path)
        refused = (self._missing_namespace(target) if live is None else None) or self._invalid(applied, served, typed=True)
        if refused:
            return refused
        new, conflicts = writes.apply(live, applied, manager, request.query.get("force") == "true", _now())
        if conflicts:
            return writes.conflict(conflicts)
        refused = self._invalid(new, served)
        if refused:
            return refused
        if live is None:
            return 201, self._create_object(request.path, target, new)
        return 200, self._write(request.path, live, new)

    def _get(self, request: Request, target: Target, served: Served) -> tuple[int, Any]:
        obj = self.objects.get(request.path)
        if obj is not None and request.path in self._terminating:  # its controllers work through their finalizers
            left = self._terminating[request.path]
            if left is not None:
                self._terminating[request.path] = left - 1
            if left == 0:
                obj = self._forget(request.path)
        script = self.progress.get(request.key)
        state = _done(obj) if obj is not None else None  # as a healthy controller would report it
        if obj is not None and script:
            state = script.pop(0) if len(script) > 1 else script[0]
            if state is GONE:
                obj = self._forget(request.path)
        if obj is None:
            return writes.status(404, "NotFound", f'{served.resource} "{target.name}" not found',
                                 {"name": target.name, "group": served.group, "kind": served.plural})
        if obj.get("status") != state:
            obj["status"] = state
            self._bump(obj)
        return 200, obj

    def _delete(self, request: Request, target: Target, served: Served) -> tuple[int, Any]:
        obj = self.objects.get(request.path)
        if obj is None:
            return writes.status(404, "NotFound", f'{served.resource} "{target.name}" not found',
                                 {"name": target.name, "group": served.group, "kind": served.plural})
        meta = obj["metadata"]
        if request.path not in self._terminating:
            if not meta.get("finalizers"):
                self._forget(request.path)
                return 200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                             "details": {"name": target.name, "group": served.group, "kind": served.plural,
                                         "uid": meta.get("uid")}}
            if request.query.get("propagationPolicy") == "Foreground":
                meta["finalizers"] = [*meta["finalizers"], "foregroundDeletion"]
            meta.update(deletionTimestamp=_now(), deletionGracePeriodSeconds=0)
            self._terminating[request.path] = self.finalize_gets
            self._bump(obj)
        return 200, obj

    # --- the pieces --------------------------------------------------------------------------------
    def _served(self, group: str, version: str, plural: str) -> Served | None:
        return next((s for s in self._all_served() if (s.group, s.version, s.plural) == (group, version, plural)), None)

    def _all_served(self) -> list[Served]:
        found = [Served(g, v, kind, plural, ns, "builtin") for g, versions, kind, plural, ns in BUILTINS for v in versions]
        return found + [Served(c.group, v, c.kind, c.resource, c.namespaced, schema)
                        for c in self.crds for v, schema in c.versions.items()]

    def _versions(self, group: str) -> list[str]:
        return list(dict.fromkeys(s.version for s in self._all_served() if s.group == group))

    def _discovery(self, path: str) -> tuple[int, Any] | None:
        """A discovery document (404 for a group or version not served), or None: not one."""
        parts = path.strip("/").split("/")
        if path == "/version":
            return 200, {"major": "1", "minor": "35", "gitVersion": "v1.35.0", "platform": "linux/amd64"}
        if parts == ["api"]:
            return 200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
        if parts == ["apis"]:
            groups = dict.fromkeys(s.group for s in self._all_served() if s.group)
            return 200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": [self._group(g) for g in groups]}
        if parts[0] == "apis" and len(parts) == 2:
            return (200, self._group(parts[1])) if self._versions(parts[1]) else writes.status(404, "NotFound", NOT_FOUND)
        if parts == ["api", "v1"] or (parts[0] == "apis" and len(parts) == 3):
            group, version = ("", "v1") if parts[0] == "api" else (parts[1], parts[2])
            resources = [{"name": s.plural, "singularName": s.kind.lower(), "namespaced": s.namespaced, "kind": s.kind,
                          "verbs": VERBS} for s in self._all_served() if (s.group, s.version) == (group, version)]
            if not resources:
                return writes.status(404, "NotFound", NOT_FOUND)
            return 200, {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{group}/{version}".lstrip("/"),
                         "resources": resources}
        return None

    def _group(self, group: str) -> dict[str, Any]:
        versions = [{"groupVersion": f"{group}/{v}", "version": v} for v in self._versions(group)]
        return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": versions, "preferredVersion": versions[0]}

    def _missing_namespace(self, target: Target) -> tuple[int, Any] | None:
        ns = target.namespace
        if ns in self.missing_namespaces and f"/api/v1/namespaces/{ns}" not in self.objects:
            return writes.status(404, "NotFound", f'namespaces "{ns}" not found', {"name": ns, "kind": "namespaces"})
        return None

    def _invalid(self, obj: dict[str, Any], served: Served, typed: bool = False) -> tuple[int, Any] | None:
        """The refusal of an object its schema does not allow (`typed`: an applied
        configuration, whose undeclared fields fail; elsewhere they are let through)."""
        validator = _validator(served)
        if validator is None:
            return None
        unknown, errors = writes.problems(validator, {k: v for k, v in obj.items() if k != "status"})
        if typed:
            return writes.typed_patch_error(obj, unknown) if unknown else None
        name = (obj.get("metadata") or {}).get("name", "")
        return writes.invalid(served.group, served.kind, name, errors) if errors else None

    def _create_object(self, path: str, target: Target, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj.setdefault("metadata", {})
        if target.namespace:
            meta.setdefault("namespace", target.namespace)
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=_now(), generation=1)
        scripted = self.finalizers.get(f"{target.plural}/{meta['name']}")
        if scripted:
            meta["finalizers"] = list(dict.fromkeys([*(meta.get("finalizers") or []), *scripted]))
        self.objects[path] = obj
        return self._bump(obj)

    def _write(self, path: str, live: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
        """Store a changed object (a no-op write changes nothing, resourceVersion included)."""
        if new == live:
            return live
        if writes.spec_changed(live, new):
            new["metadata"]["generation"] = live["metadata"].get("generation", 0) + 1
        self.objects[path] = new
        return self._bump(new)

    def _bump(self, obj: dict[str, Any]) -> dict[str, Any]:
        self.revision += 1
        obj["metadata"]["resourceVersion"] = str(self.revision)
        return obj

    def _forget(self, path: str) -> None:
        """The object goes (None, for `obj = self._forget(path)`)."""
        self.objects.pop(path, None)
        self._terminating.pop(path, None)


_REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 409: "Conflict", 422: "Invalid",
            500: "InternalError"}


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _validator(served: Served) -> Any:
    if served.schema == "builtin":
        try:
            return writes.builtin_validator(f"{served.group}/{served.version}".lstrip("/"), served.kind)
        except FileNotFoundError:  # kubernetes-validate has no schema for it
            return None
    if isinstance(served.schema, Path):
        return writes.crd_validator(served.schema)
    return writes.schema_validator(served.schema) if served.schema is not None else None


def _merge_patch(live: dict[str, Any], changes: dict[str, Any]) -> None:
    """RFC 7386: maps merge, null removes, anything else replaces."""
    for key, value in changes.items():
        if value is None:
            live.pop(key, None)
        elif isinstance(value, dict) and isinstance(live.get(key), dict):
            _merge_patch(live[key], value)
        else:
            live[key] = copy.deepcopy(value)


def _parse(path: str) -> Target | None:
    parts = path.strip("/").split("/")
    if parts[0] == "api" and len(parts) >= 3:
        group, version, rest = "", parts[1], parts[2:]
    elif parts[0] == "apis" and len(parts) >= 4:
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    if rest[0] == "namespaces" and len(rest) in (3, 4):
        return Target(group, version, rest[1], rest[2], rest[3] if len(rest) == 4 else None)
    if len(rest) in (1, 2):
        return Target(group, version, None, rest[0], rest[1] if len(rest) == 2 else None)
    return None


def _done(obj: dict[str, Any]) -> dict[str, Any]:
    generation = obj["metadata"].get("generation", 1)
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


def _decode(raw: bytes, content_type: str) -> Any:
    if not raw:
        return None
    if content_type.startswith(APPLY_PATCH):  # YAML (JSON is YAML too)
        return yaml.load(raw, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    return json.loads(raw)


def _handler(api: FakeKubeApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go out in separate writes

        def _serve(self) -> None:
            split = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            content_type = self.headers.get("Content-Type", "")
            body = _decode(self.rfile.read(length) if length else b"", content_type)
            request = Request(self.command, split.path, dict(parse_qsl(split.query)), content_type,
                              self.headers.get("Authorization", ""), body, self.headers.get("User-Agent", ""))
            code, answer = api.answer(request)
            data = json.dumps(answer).encode()
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
