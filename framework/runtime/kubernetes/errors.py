"""What a failed request to the API server tells the user: one line that names the
step (`apply Deployment/churn-server in ml-dev`), what went wrong and what to do."""

from __future__ import annotations

import re

from framework.errors import MlopsError, Problem
from framework.runtime.kubernetes.client import KubeApiError, KubeUnreachable
from framework.runtime.kubernetes.objects import KubeObject
from framework.runtime.kubernetes.rest import CRD_PROVIDERS, Resource, is_custom

KEY = "kubernetes"
_MISSING_NAMESPACE = re.compile(r'namespaces "([^"]+)" not found')


def failure(step: str, message: str) -> MlopsError:
    return failures(step, [message])


def failures(step: str, messages: list[str]) -> MlopsError:
    return MlopsError([Problem(None, KEY, f"{step}: {message}") for message in messages])


def request_failed(step: str, exc: Exception, obj: KubeObject, resource: Resource | None, verb: str,
                   served: list[str] | None = None) -> MlopsError:
    """`served`: for a 404 of the resource itself, the versions the cluster serves it at."""
    return failure(step, _explain(exc, obj, resource, verb, served))


def _explain(exc: Exception, obj: KubeObject, resource: Resource | None, verb: str, served: list[str] | None) -> str:
    if isinstance(exc, KubeUnreachable):
        return (f"cannot reach the Kubernetes API server at {exc.host} ({exc.why}); is the cluster up, and is the "
                "kubeconfig's current context the right one (`kubectl config current-context`)?")
    assert isinstance(exc, KubeApiError)
    namespace = obj.namespace or "default"
    what = f"{resource.plural}.{resource.group}".rstrip(".") if resource else obj.kind.lower()
    where = f" -n {namespace}" if resource is None or resource.namespaced else ""
    if exc.status == 401:
        return ("unauthorized (401): the API server refused the kubeconfig's credentials; log in again or refresh "
                f"the token, then check RBAC with `kubectl auth can-i {verb} {what}{where}`")
    if exc.status == 403:
        return (f"forbidden (403): {exc.message}; the kubeconfig's user needs RBAC permission to {verb} {what}"
                f"{f' in namespace {namespace}' if where else ''} (check with `kubectl auth can-i {verb} {what}{where}`)")
    if exc.status == 404:
        missing = _MISSING_NAMESPACE.search(exc.message)
        if missing or exc.details.get("kind") == "namespaces":
            name = missing.group(1) if missing else exc.details.get("name", namespace)
            return (f"namespace {name} does not exist; create it (`kubectl create namespace {name}`) "
                    "or set deploy.namespace to an existing one")
        if served and obj.version not in served:  # a 404 says the same when only the version is missing
            wanted = f"{obj.api_version} {obj.kind}"
            if resource is not None and is_custom(resource.group):
                why = ("the CRD installed is of another release than the manifests are written for; "
                       f"install a release of {_provider(resource.group, 'of')} that serves {wanted}")
            else:
                why = f"this Kubernetes release does not serve {wanted}"
            return f"the cluster serves {what} at {', '.join(served)}, not {obj.version}: {why}"
        if resource is not None and is_custom(resource.group):
            return (f"the CRD {resource.crd_name} ({obj.api_version} {obj.kind}) is not installed in the cluster; "
                    f"install {_provider(resource.group, 'that serves')}")
        return f"not found (404): {exc.message}"
    if exc.status == 422:
        return f"the API server refused it (422 Invalid): {exc.message}"
    if exc.status == 500 and "field not declared in schema" in exc.message and resource and is_custom(resource.group):
        return (f"the API server answered {exc.status} {exc.reason}: {exc.message}; the cluster's CRD "
                f"{resource.crd_name} is older than these manifests: upgrade {_provider(resource.group, 'of')}")
    return f"the API server answered {exc.status} {exc.reason}: {exc.message}"


def _provider(group: str, relation: str) -> str:
    """Who installs a CRD group's kinds: KubeRay, Argo Rollouts, ... or `the operator <relation> <group>`."""
    return CRD_PROVIDERS.get(group, f"the operator {relation} {group}")


def not_served(step: str, obj: KubeObject) -> MlopsError:
    return failure(step, f"the cluster serves no kind {obj.kind} in {obj.api_version} (is its CRD installed?)")
