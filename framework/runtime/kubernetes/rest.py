"""Where each kind lives in the Kubernetes REST API: a table for the kinds generate
writes, the cluster's discovery for anything else.

The table is keyed by (API group, kind) and gives the version generate writes, the
plural resource name and whether the kind is namespaced; the path uses the version of
the object itself, so a manifest on another version of a known group still resolves.
"""

from __future__ import annotations

from dataclasses import dataclass

from framework.runtime.kubernetes.objects import KubeObject


@dataclass(frozen=True)
class Resource:
    group: str  # "" for the core API
    version: str
    plural: str
    namespaced: bool = True

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{self.group}"


_BUILTIN = {
    ("", "Namespace"): ("v1", "namespaces", False),
    ("", "ServiceAccount"): ("v1", "serviceaccounts", True),
    ("", "ConfigMap"): ("v1", "configmaps", True),
    ("", "Secret"): ("v1", "secrets", True),
    ("", "Service"): ("v1", "services", True),
    ("", "PersistentVolumeClaim"): ("v1", "persistentvolumeclaims", True),
    ("apps", "Deployment"): ("v1", "deployments", True),
    ("autoscaling", "HorizontalPodAutoscaler"): ("v2", "horizontalpodautoscalers", True),
    ("policy", "PodDisruptionBudget"): ("v1", "poddisruptionbudgets", True),
    ("networking.k8s.io", "NetworkPolicy"): ("v1", "networkpolicies", True),
    ("batch", "CronJob"): ("v1", "cronjobs", True),
    ("batch", "Job"): ("v1", "jobs", True),
    ("rbac.authorization.k8s.io", "Role"): ("v1", "roles", True),
    ("rbac.authorization.k8s.io", "RoleBinding"): ("v1", "rolebindings", True),
}
_CUSTOM = {
    ("ray.io", "RayJob"): ("v1", "rayjobs", True),
    ("ray.io", "RayService"): ("v1", "rayservices", True),
    ("kubeflow.org", "PyTorchJob"): ("v1", "pytorchjobs", True),
    ("networking.istio.io", "VirtualService"): ("v1", "virtualservices", True),
    ("networking.istio.io", "DestinationRule"): ("v1", "destinationrules", True),
    ("monitoring.coreos.com", "ServiceMonitor"): ("v1", "servicemonitors", True),
    ("monitoring.coreos.com", "PrometheusRule"): ("v1", "prometheusrules", True),
    ("argoproj.io", "Rollout"): ("v1alpha1", "rollouts", True),
    ("argoproj.io", "AnalysisTemplate"): ("v1alpha1", "analysistemplates", True),
}
RESOURCES: dict[tuple[str, str], Resource] = {
    (group, kind): Resource(group, version, plural, namespaced)
    for (group, kind), (version, plural, namespaced) in {**_BUILTIN, **_CUSTOM}.items()
}

# What installs the CRDs of each custom group: a 404 for one of them says so.
CRD_PROVIDERS = {
    "ray.io": "KubeRay (the kuberay-operator Helm chart)",
    "kubeflow.org": "the Kubeflow Training Operator",
    "networking.istio.io": "Istio",
    "monitoring.coreos.com": "the Prometheus Operator (e.g. the kube-prometheus-stack Helm chart)",
    "argoproj.io": "Argo Rollouts",
}


def is_custom(group: str) -> bool:
    return group in CRD_PROVIDERS or (group != "" and "." in group and not group.endswith(".k8s.io"))


def known(obj: KubeObject) -> Resource | None:
    """The table's entry for the object, at the object's own version."""
    entry = RESOURCES.get((obj.group, obj.kind))
    if entry is None:
        return None
    return Resource(entry.group, obj.version, entry.plural, entry.namespaced)


def collection_path(resource: Resource, namespace: str | None) -> str:
    base = f"/api/{resource.version}" if resource.group == "" else f"/apis/{resource.group}/{resource.version}"
    if resource.namespaced:
        base += f"/namespaces/{namespace or 'default'}"
    return f"{base}/{resource.plural}"


def object_path(resource: Resource, obj: KubeObject) -> str:
    return f"{collection_path(resource, obj.namespace)}/{obj.name}"
