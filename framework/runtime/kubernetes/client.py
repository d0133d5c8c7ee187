"""A connection to the cluster of the current kubeconfig (or the in-cluster config)
through the official `kubernetes` client: its Configuration and ApiClient carry the
server URL, TLS and credentials; this module only builds paths and bodies.

Server-side apply is a PATCH with content type `application/apply-patch+yaml`,
`fieldManager=mlops` and `force=true`: fields another manager (kubectl, a controller's
own apply) set are taken over rather than refused as conflicts, so the generated
manifests stay the truth. Fields that controllers own (status, an HPA's replicas when
a manifest leaves them out) are untouched.

`kubernetes` is imported inside functions: the CLI must not pay for it at start-up.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from framework.errors import MlopsError, Problem
from framework.runtime.kubernetes.objects import KubeObject
from framework.runtime.kubernetes.rest import Resource, known

FIELD_MANAGER = "mlops"
APPLY_CONTENT_TYPE = "application/apply-patch+yaml"
DEFAULT_KUBECONFIG = "~/.kube/config"


class KubeApiError(Exception):
    """The API server answered with a non-2xx status."""

    def __init__(self, status: int, reason: str, message: str, details: dict[str, Any] | None = None):
        self.status, self.reason, self.message, self.details = status, reason, message, details or {}
        super().__init__(f"{status} {reason}: {message}")


class KubeUnreachable(Exception):
    """No HTTP answer at all: connection refused, DNS, TLS, timeout."""

    def __init__(self, host: str, why: str):
        self.host, self.why = host, why
        super().__init__(f"{host}: {why}")


def kubeconfig_path() -> str:
    return os.environ.get("KUBECONFIG") or DEFAULT_KUBECONFIG


def load_configuration() -> Any:
    """The client Configuration: the kubeconfig ($KUBECONFIG or ~/.kube/config, its
    current context) when there is one, else the in-cluster service account."""
    from kubernetes import client, config

    configuration = client.Configuration()
    path = kubeconfig_path()
    if any(Path(p).expanduser().is_file() for p in path.split(os.pathsep) if p):
        try:
            config.load_kube_config(config_file=path, client_configuration=configuration)
        except (config.ConfigException, ValueError, OSError, TypeError, KeyError) as exc:
            raise MlopsError([Problem(None, "kubernetes", f"the kubeconfig {path} is unusable: {exc}")]) from None
    elif os.environ.get("KUBERNETES_SERVICE_HOST"):
        try:
            config.load_incluster_config(client_configuration=configuration)
        except config.ConfigException as exc:
            raise MlopsError([Problem(None, "kubernetes", f"the in-cluster configuration is unusable: {exc}")]) from None
    else:
        raise MlopsError([Problem(None, "kubernetes", (
            f"no cluster to apply to: no kubeconfig at {path} and not running inside a cluster; "
            "point KUBECONFIG at a kubeconfig (or write ~/.kube/config, e.g. with your cloud's get-credentials command) "
            "and check `kubectl config current-context`, or use --dry-run to list what would be applied"
        ))])
    return configuration


class Kube:
    """JSON requests to the API server through the official ApiClient."""

    def __init__(self, configuration: Any, request_timeout_s: float = 30.0):
        from kubernetes import client

        self.api = client.ApiClient(configuration)
        self.host = configuration.host
        self.request_timeout_s = request_timeout_s
        self._discovered: dict[tuple[str, str], Resource] = {}
        self._dynamic: Any = None
        self._cache_dir: Any = None

    def close(self) -> None:
        self.api.close()
        if self._cache_dir is not None:
            self._cache_dir.cleanup()

    def apply(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        query = [("fieldManager", FIELD_MANAGER), ("force", "true")]
        return self.request("PATCH", path, query, body, APPLY_CONTENT_TYPE)

    def get(self, path: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        try:
            return self.request("GET", path)
        except KubeApiError as error:
            if error.status == 404:
                return None
            raise

    def delete(self, path: str) -> None:
        """Delete in the foreground: the object goes once its dependents are gone."""
        try:
            self.request("DELETE", path, [("propagationPolicy", "Foreground")])
        except KubeApiError as error:
            if error.status != 404:
                raise

    def served_versions(self, group: str, plural: str) -> list[str]:
        """The versions of an API group that serve a resource, from discovery ([]: none,
        e.g. its CRD is not installed)."""
        base = "/api" if group == "" else f"/apis/{group}"
        versions = [v if isinstance(v, str) else v.get("version", "")  # /api lists plain strings
                    for v in (self.get(base) or {}).get("versions") or []]
        return [v for v in versions
                if any(r.get("name") == plural for r in (self.get(f"{base}/{v}") or {}).get("resources") or [])]

    def request(self, method: str, path: str, query: list[tuple[str, str]] | None = None,
                body: dict[str, Any] | None = None, content_type: str = "application/json") -> dict[str, Any]:
        import urllib3
        from kubernetes.client.exceptions import ApiException

        headers = {"Accept": "application/json", "Content-Type": content_type}
        query = list(query or [])
        try:
            if hasattr(self.api, "param_serialize"):  # kubernetes >= 36 (the pydantic-based generator)
                request = self.api.param_serialize(method, path, query_params=query, header_params=headers,
                                                   body=body, auth_settings=["BearerToken"])
                response = self.api.call_api(*request, _request_timeout=self.request_timeout_s)
                status, reason, data = response.status, response.reason, response.read()
            else:  # kubernetes 31-35: raises ApiException for a non-2xx answer
                response = self.api.call_api(path, method, query_params=query, header_params=headers, body=body,
                                             auth_settings=["BearerToken"], _preload_content=False,
                                             _return_http_data_only=True, _request_timeout=self.request_timeout_s)
                status, reason, data = response.status, response.reason, response.data
        except ApiException as exc:
            if not exc.status:  # the client's wrapper for TLS errors
                raise KubeUnreachable(self.host, str(exc.reason).strip()) from None
            status, reason, data = exc.status, exc.reason, exc.body
        except urllib3.exceptions.HTTPError as exc:
            raise KubeUnreachable(self.host, _why_unreachable(exc)) from None
        decoded = _json(data)
        if not 200 <= status <= 299:
            message = decoded.get("message") if isinstance(decoded, dict) else None
            details = decoded.get("details") if isinstance(decoded, dict) else None
            raise KubeApiError(status, str(reason or ""), str(message or _text(data) or reason), details)
        return decoded if isinstance(decoded, dict) else {}

    def resource(self, obj: KubeObject) -> Resource | None:
        """The table's entry, else what the cluster's discovery says (None: not served)."""
        entry = known(obj)
        if entry is not None:
            return entry
        key = (obj.api_version, obj.kind)
        if key not in self._discovered:
            found = self._discover(obj)
            if found is None:
                return None
            self._discovered[key] = found
        return self._discovered[key]

    def _discover(self, obj: KubeObject) -> Resource | None:
        import urllib3
        from kubernetes.client.exceptions import ApiException
        from kubernetes.dynamic import DynamicClient
        from kubernetes.dynamic.exceptions import ResourceNotFoundError

        try:
            if self._dynamic is None:  # its discovery cache lives for this run only: a CRD installed since is seen
                self._cache_dir = tempfile.TemporaryDirectory(prefix="mlops-discovery-")
                self._dynamic = DynamicClient(self.api, cache_file=os.path.join(self._cache_dir.name, "discovery.json"))
            found = self._dynamic.resources.get(api_version=obj.api_version, kind=obj.kind)
        except ResourceNotFoundError:
            return None
        except ApiException as exc:
            raise KubeApiError(exc.status or 0, str(exc.reason or ""), _text(exc.body) or str(exc.reason)) from None
        except urllib3.exceptions.HTTPError as exc:
            raise KubeUnreachable(self.host, _why_unreachable(exc)) from None
        return Resource(obj.group, obj.version, found.name, bool(found.namespaced))


def _why_unreachable(exc: Exception) -> str:
    reason = getattr(exc, "reason", None) or exc
    text = str(reason)
    if "refused" in text.lower():
        return "connection refused"
    if "timed out" in text.lower():
        return "timed out"
    return text.split(": ", 1)[-1] if "object at 0x" in text else text


def _text(data: Any) -> str:
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace").strip()
    return str(data or "").strip()


def _json(data: Any) -> Any:
    text = _text(data)
    if not text:
        return {}
    try:
        return json.loads(text)
    except ValueError:
        return {}
