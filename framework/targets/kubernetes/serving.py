"""The serving Deployment and what surrounds it: Service, HPA, PDB, NetworkPolicy.

Triton, vLLM, SGLang and TGI run in a Deployment (for canary and blue/green an Argo Rollout of the
traffic target owns the pods through `workloadRef`: the Deployment then only carries
the pod template, and the HPA scales the Rollout). Ray Serve runs in a RayService of
the ray target, whose operator owns the serve pods and their Service: nothing here is
rendered for it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from framework.targets import common, metrics
from framework.targets.kubernetes import pods, sglang, tgi, triton, vllm

COMPONENT = "server"
MONITORING_NAMESPACE = "monitoring"
ISTIO_NAMESPACE = "istio-system"  # ingress gateways reach the pods directly
NAMESPACE_LABEL = "kubernetes.io/metadata.name"  # set by Kubernetes on every namespace
BACKENDS = {"triton": triton, "vllm": vllm, "sglang": sglang, "tgi": tgi}
SERVING_SHA = "mlops.dev/serving-config-sha256"


def server_pod(recipe) -> pods.ServerPod | None:
    """The backend's pod parts, or None when the backend is not a Deployment (ray_serve)."""
    backend = BACKENDS.get(recipe.serving.backend)
    return backend.server(recipe) if backend else None


def initial_replicas(recipe) -> int:
    """serving.replicas.min; 0 when an Argo Rollout owns the pods through workloadRef
    (it reads the template from this Deployment and scales replicas itself: replicas
    here would run a second, unmanaged copy, and each apply would undo its scale-down)."""
    return 0 if common.uses_argo_rollout(recipe) else recipe.serving.replicas.min


def serving_sha(recipe) -> str:
    """Hash of the recipe sections a server pod derives from the mounted recipe (the
    model repository's config.pbtxt, the champion to fetch). In the pod template, a change
    to them is a new revision, hence a rollout; edits elsewhere (alerts, CI) are not."""
    sections = recipe.model_dump(mode="json", include={"name", "model", "serving", "tracking"})
    return hashlib.sha256(json.dumps(sections, sort_keys=True).encode()).hexdigest()


def _spread(recipe) -> list[dict[str, Any]]:
    """Replicas spread over zones and nodes (best effort: never blocks scheduling)."""
    selector = {"matchLabels": common.selector_labels(recipe, COMPONENT)}
    return [
        {
            "maxSkew": 1,
            "topologyKey": key,
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": selector,
            # Spread each revision on its own (keys absent from a pod's labels are ignored):
            # Deployments label pods with pod-template-hash, Argo Rollouts with its own.
            "matchLabelKeys": ["pod-template-hash", "rollouts-pod-template-hash"],
        }
        for key in ("topology.kubernetes.io/zone", "kubernetes.io/hostname")
    ]


def pod_labels(recipe) -> dict[str, str]:
    """Labels of the serving pods. Without an Argo Rollout (direct, shadow, bandit) this
    Deployment's pods are the champion's: they carry the stable track, which the traffic
    target's subsets and the ServiceMonitor's series rely on. Under an Argo Rollout, Argo
    sets the track on the pods it manages (stable and canary/preview metadata)."""
    labels = common.labels(recipe, COMPONENT)
    if not common.uses_argo_rollout(recipe):
        labels[metrics.TRACK_LABEL] = metrics.STABLE
    return labels


def deployment(recipe, server: pods.ServerPod) -> dict[str, Any]:
    name = common.names(recipe).server
    replicas = recipe.serving.replicas
    extra: dict[str, Any] = {"terminationGracePeriodSeconds": 60}
    if replicas.max > 1:
        extra["topologySpreadConstraints"] = _spread(recipe)
    pod = pods.pod_spec(
        recipe,
        server.containers,
        init_containers=server.init_containers,
        volumes=server.volumes,
        gpu=server.gpus > 0,
        gpu_type=server.gpu_type,
        **extra,
    )
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": common.metadata(recipe, name, COMPONENT, annotations=pods.workload_skips(pod)),
        "spec": {
            "replicas": initial_replicas(recipe),
            "revisionHistoryLimit": 5,
            "progressDeadlineSeconds": server.startup_seconds + 600,
            "selector": {"matchLabels": common.selector_labels(recipe, COMPONENT)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {
                    "labels": pod_labels(recipe),
                    "annotations": {SERVING_SHA: serving_sha(recipe), **pods.pod_annotations(recipe)},
                },
                "spec": pod,
            },
        },
    }


def service(recipe, server: pods.ServerPod) -> dict[str, Any]:
    """ClusterIP Service `<recipe>`: what clients and the mesh call."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": common.metadata(recipe, common.names(recipe).service, COMPONENT),
        "spec": {
            "type": "ClusterIP",
            "selector": common.selector_labels(recipe, COMPONENT),
            "ports": [
                {"name": p.name, "port": p.number, "targetPort": p.name, "protocol": "TCP", "appProtocol": p.app_protocol}
                for p in server.ports
            ],
        },
    }


def hpa(recipe) -> dict[str, Any]:
    replicas = recipe.serving.replicas
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": common.metadata(recipe, common.names(recipe).server, COMPONENT),
        "spec": {
            "scaleTargetRef": common.workload_ref(recipe),
            # Scaling to zero needs the HPAScaleToZero feature gate: the HPA keeps one.
            "minReplicas": max(1, replicas.min),
            "maxReplicas": replicas.max,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": replicas.target_utilization},
                    },
                }
            ],
        },
    }


def pdb(recipe) -> dict[str, Any]:
    """One replica may be evicted at a time; with several, one always stays."""
    budget = {"minAvailable": 1} if recipe.serving.replicas.min > 1 else {"maxUnavailable": 1}
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": common.metadata(recipe, common.names(recipe).server, COMPONENT),
        "spec": {"selector": {"matchLabels": common.selector_labels(recipe, COMPONENT)}, **budget},
    }


def _namespaces(*names: str) -> list[dict[str, Any]]:
    return [{"namespaceSelector": {"matchLabels": {NAMESPACE_LABEL: n}}} for n in names]


def network_policy(recipe, server: pods.ServerPod) -> dict[str, Any]:
    """Ingress to the API ports from the recipe's namespace (and the Istio gateways),
    to the metrics port from the monitoring namespace; nothing else reaches the pods."""
    def named(ports: list[pods.Port]) -> list[dict[str, Any]]:
        return [{"port": p.name, "protocol": "TCP"} for p in ports]

    clients = [recipe.deploy.namespace] + ([ISTIO_NAMESPACE] if recipe.deploy.istio else [])
    private = [p for p in server.ports if not p.public]
    rules = [{"from": _namespaces(*clients), "ports": named([p for p in server.ports if p.public])}]
    if private:
        rules.append({"from": _namespaces(MONITORING_NAMESPACE), "ports": named(private)})
    else:  # metrics share the API port: Prometheus scrapes it
        rules.append({"from": _namespaces(MONITORING_NAMESPACE), "ports": named(server.ports)})
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": common.metadata(recipe, common.names(recipe).server, COMPONENT),
        "spec": {
            "podSelector": {"matchLabels": common.selector_labels(recipe, COMPONENT)},
            "policyTypes": ["Ingress"],
            "ingress": rules,
        },
    }
