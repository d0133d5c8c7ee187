"""Building blocks every pod of this target shares: containers, volumes, scheduling.

Each pod runs as the recipe's service account without its API token, under the secure
contexts of `common`, with a read-only root filesystem: whatever a process writes goes
to an emptyDir named here (`/tmp` everywhere, caches and model directories per server).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable

from framework.targets import common

# Checkov checks that a generated manifest cannot satisfy, each skipped in the manifest
# itself (`checkov.io/skip<N>` annotations) with the reason written next to it.
CHECKOV_SKIPS: dict[str, str] = {
    "CKV_K8S_43": "images are pinned by tag: recipe validation refuses untagged and :latest images, "
    "and a recipe may pin a digest (image@sha256:...) where its registry allows",
    "CKV_K8S_35": "deploy.secrets is an environment-variable contract (MLFLOW_TRACKING_TOKEN, HF_TOKEN... "
    "are read from the environment by their clients); values stay in Secrets, never in the manifest",
    "CKV_K8S_40": "uid 1000 is the non-root user the serving and runtime images are built with "
    "(tritonserver's triton-server); common.RUN_AS_USER keeps every target on the same uid",
}

# Environment of every container running framework code (read-only root: no bytecode).
PYTHON_ENV = [
    {"name": "HOME", "value": "/tmp"},
    {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
    {"name": "PYTHONUNBUFFERED", "value": "1"},
]

ISTIO_NATIVE_SIDECAR = "sidecar.istio.io/nativeSidecar"
ISTIO_INJECT = "sidecar.istio.io/inject"


def checkov_skips(ids: Iterable[str]) -> dict[str, str]:
    """Annotations skipping the given checkov checks, numbered in a stable order."""
    return {f"checkov.io/skip{i}": f"{check}={CHECKOV_SKIPS[check]}" for i, check in enumerate(sorted(set(ids)), 1)}


def workload_skips(pod: dict[str, Any]) -> dict[str, str]:
    """The skips a workload needs: digest pinning and uid always, secrets-as-env when a
    container reads a Secret through its environment."""
    ids = {"CKV_K8S_43", "CKV_K8S_40"}
    containers = pod.get("initContainers", []) + pod["containers"]
    if any("secretKeyRef" in e.get("valueFrom", {}) for c in containers for e in c.get("env", [])):
        ids.add("CKV_K8S_35")
    return checkov_skips(ids)


def cpu_quantity(cpus: float | int | str) -> str:
    """CPUs as a Kubernetes quantity: 4.0 -> '4', 1.5 -> '1500m' (strings pass through)."""
    if isinstance(cpus, str):
        return cpus
    if float(cpus).is_integer():
        return str(int(cpus))
    return f"{round(float(cpus) * 1000)}m"


def whole_gpus(gpus: float | int) -> int:
    """Kubernetes schedules whole GPUs: a fractional request rounds up."""
    return math.ceil(gpus)


def empty_dir(name: str, path: str, *, size_limit: str | None = None,
              memory: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    """(volume, mount) of a scratch directory living as long as the pod."""
    source: dict[str, Any] = {}
    if memory:
        source["medium"] = "Memory"
    if size_limit:
        source["sizeLimit"] = size_limit
    return {"name": name, "emptyDir": source}, {"name": name, "mountPath": path}


def tmp_dir(size_limit: str = "1Gi") -> tuple[dict[str, Any], dict[str, Any]]:
    return empty_dir("tmp", "/tmp", size_limit=size_limit)


def shm_dir(size_limit: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A memory-backed /dev/shm (the runtime's default is 64Mi: too small for NCCL and
    DataLoader workers). Its usage counts against the container's memory limit."""
    return empty_dir("dshm", "/dev/shm", size_limit=size_limit, memory=True)


def container(
    name: str,
    image: str,
    *,
    resources: dict[str, Any],
    mounts: list[dict[str, Any]],
    env: list[dict[str, Any]] = (),
    command: list[str] | None = None,
    args: list[str] | None = None,
    ports: list[dict[str, Any]] = (),
    probes: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A container under the secure context, with requests and limits."""
    spec: dict[str, Any] = {
        "name": name,
        "image": image,
        # Always re-resolves the tag against the registry (a cheap manifest request when the
        # layers are cached), so a pod never starts from an image its pull secret cannot read.
        "imagePullPolicy": "Always",
        "resources": resources,
        "securityContext": common.container_security_context(read_only_root=True),
        "volumeMounts": sorted(mounts, key=lambda m: m["mountPath"]),
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if env:
        spec["env"] = list(env)
    if command:
        spec["command"] = list(command)
    if args:
        spec["args"] = list(args)
    if ports:
        spec["ports"] = list(ports)
    spec.update(probes or {})
    return spec


def runtime_container(recipe, name: str, module: str, *extra_args: str, resources: dict[str, Any],
                      mounts: list[dict[str, Any]] = (), env: list[dict[str, Any]] = (),
                      feature_store: bool = False) -> dict[str, Any]:
    """A container of deploy.image running `python -m <module>` (contracts.entrypoints) on the
    mounted resolved recipe: the entrypoint every job shares with a local apply. With
    `feature_store`, the Feast online store's Secrets too (jobs that read features)."""
    _, recipe_mount = common.recipe_volume(recipe)
    secrets = common.secret_env(recipe)
    return container(
        name,
        recipe.deploy.image,
        command=["python", "-m", module, common.recipe_path_in_pod(), *extra_args],
        resources=resources,
        mounts=[recipe_mount, *mounts],
        env=[*PYTHON_ENV, *env, *(common.with_feature_store_env(recipe, secrets) if feature_store else secrets)],
    )


def _merge_tolerations(*groups: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    return common.unique(t for group in groups for t in group)


def pod_spec(
    recipe,
    containers: list[dict[str, Any]],
    *,
    volumes: list[dict[str, Any]],
    init_containers: list[dict[str, Any]] = (),
    gpu: bool = False,
    gpu_type: str | None = None,
    node_selector: dict[str, str] | None = None,
    tolerations: Iterable[dict[str, Any]] = (),
    recipe_volume: bool = True,
    **extra: Any,
) -> dict[str, Any]:
    """A pod spec: service account without token, secure context, the recipe volume
    (unless `recipe_volume` is false), deploy.node_selector/tolerations, plus GPU node
    placement when `gpu`. `extra` adds or replaces fields (e.g. serviceAccountName)."""
    selector = dict(recipe.deploy.node_selector)
    extra_tolerations: list[dict[str, Any]] = []
    if gpu:
        gpu_selector, extra_tolerations = common.gpu_scheduling(gpu_type)
        selector.update(gpu_selector)
    selector.update(node_selector or {})
    recipe_vol, _ = common.recipe_volume(recipe)
    spec: dict[str, Any] = {
        "serviceAccountName": recipe.deploy.service_account,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": common.pod_security_context(),
        "containers": containers,
        "volumes": sorted([*([recipe_vol] if recipe_volume else []), *volumes], key=lambda v: v["name"]),
        **extra,
    }
    if init_containers:
        spec["initContainers"] = list(init_containers)
    if selector:
        spec["nodeSelector"] = selector
    merged = _merge_tolerations(
        (common.toleration(t) for t in recipe.deploy.tolerations), extra_tolerations, tolerations
    )
    if merged:
        spec["tolerations"] = merged
    return spec


def pod_annotations(recipe) -> dict[str, str]:
    """Pod template annotations. In an Istio mesh the sidecar runs as a native sidecar
    (an init container that keeps running): init containers then reach MLflow through
    it, and Job pods complete when their main container exits."""
    return {ISTIO_NATIVE_SIDECAR: "true"} if recipe.deploy.istio else {}


def outside_mesh(recipe) -> dict[str, str]:
    """Pod template labels keeping a pod out of the Istio mesh (distributed training:
    the PyTorch rendezvous and NCCL talk pod to pod, which sidecars get in the way of)."""
    return {ISTIO_INJECT: "false"} if recipe.deploy.istio else {}


@dataclass(frozen=True)
class Port:
    """A named container port; Services and NetworkPolicies refer to it by name."""

    name: str
    number: int
    app_protocol: str  # what Istio and other L7 proxies speak on it
    public: bool = True  # reachable by clients (else only by Prometheus)

    def container_port(self) -> dict[str, Any]:
        return {"name": self.name, "containerPort": self.number, "protocol": "TCP"}


@dataclass(frozen=True)
class ServerPod:
    """What a serving backend contributes to the serving Deployment."""

    containers: list[dict[str, Any]]
    volumes: list[dict[str, Any]]
    ports: list[Port]
    gpus: int
    gpu_type: str | None
    startup_seconds: int  # longest a replica may take to become live (startup probe budget)
    init_containers: list[dict[str, Any]] = field(default_factory=list)


def startup_probe(path: str, port: str, budget_seconds: int, period: int = 10) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": port},
        "periodSeconds": period,
        "timeoutSeconds": 5,
        "failureThreshold": math.ceil(budget_seconds / period),
    }


def http_probe(path: str, port: str, *, period: int = 10, failures: int = 3) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": port},
        "periodSeconds": period,
        "timeoutSeconds": 5,
        "failureThreshold": failures,
    }
