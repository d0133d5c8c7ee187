"""What every target shares: object names, labels, headers, deterministic dumps,
secure pod defaults and resource translation. One place, so names agree across
files (a Service's selector, a ServiceMonitor's port, a RayJob's ConfigMap...).
The header, the YAML dump and the resolved recipe's bytes are shared with the runtime:
they come from framework/contracts/resolved.py."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from framework.contracts import feast as feature_store
from framework.contracts.tracking import tracking_secrets
from framework.contracts.resolved import (  # noqa: F401 - targets use them as common.*
    GENERATED_BY,
    RECIPE_FILE,
    RECIPE_MOUNT_DIR,
    header,
    recipe_path_in_pod,
    resolved_recipe_yaml,
    yaml_text,
)

PART_OF = "mlops"
K8S_NAME_MAX = 63
RAYJOB_DERIVED_SUFFIX = len("-raycluster-xxxxx-head-svc")  # what KubeRay appends to a RayJob's name
GENERATED_SUFFIX = 5  # what the API server appends to a metadata.generateName


def json_text(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


@dataclass(frozen=True)
class Names:
    """Names of every object a recipe generates (all <= 63 chars: recipe names are <= 30)."""

    recipe: str

    def _n(self, suffix: str = "") -> str:
        name = f"{self.recipe}-{suffix}" if suffix else self.recipe
        assert len(name) <= K8S_NAME_MAX, name
        return name

    @property
    def service(self) -> str:  # what clients call: http://<recipe>.<namespace>
        return self._n()

    @property
    def server(self) -> str:  # Deployment / Argo Rollout, HPA, PDB, NetworkPolicy
        return self._n("server")

    @property
    def recipe_configmap(self) -> str:  # the resolved recipe, mounted by jobs and servers
        return self._n("recipe")

    @property
    def train_job(self) -> str:  # RayJob or PyTorchJob
        return self._n("train")

    @property
    def ray_service(self) -> str:
        return self._n("serve")

    @property
    def drift_cronjob(self) -> str:
        return self._n("drift")

    @property
    def analysis_template(self) -> str:
        return self._n("analysis")

    # Batch scoring (batch.input/output). Every run of the batch RayJob is a new object
    # (`metadata.generateName`: the API server appends 5 characters), and KubeRay derives
    # `<name>-raycluster-xxxxx-head-svc` (+26) from it: the prefix keeps that <= 63.
    @property
    def batch_job_prefix(self) -> str:
        stem = self.recipe[:K8S_NAME_MAX - RAYJOB_DERIVED_SUFFIX - GENERATED_SUFFIX - len("-batch-")].rstrip("-")
        return f"{stem}-batch-"

    @property
    def batch_cronjob(self) -> str:  # CronJob starting the batch RayJob on batch.schedule
        return self._n("batch")

    @property
    def batch_rayjob_configmap(self) -> str:  # the batch RayJob's manifest, which the CronJob creates
        return self._n("batch-rayjob")

    @property
    def batch_launcher(self) -> str:  # ServiceAccount, Role and RoleBinding of the CronJob's pod
        return self._n("batch-launcher")

    # RAG (recipes with a `rag` section). KubeRay derives `<name>-raycluster-xxxxx-head-svc`
    # from a RayJob or RayService, which must stay <= 63: suffixes of at most 6 characters.
    @property
    def rag_index(self) -> str:  # RayJob indexing the corpus into the vector store
        return self._n("index")

    @property
    def rag_service(self) -> str:  # RayService (and Serve application) of the RAG service
        return self._n("rag")

    @property
    def rag_vectors(self) -> str:  # PersistentVolumeClaim holding the vector store
        return self._n("rag-vectors")

    # Feast (data.source.feast): the env's feature_store.yaml and the CronJob materialising
    # the recipe's view into the online store (<= 52 characters: recipe names are <= 30).
    @property
    def feast_configmap(self) -> str:
        return self._n("feast")

    @property
    def feast_cronjob(self) -> str:
        return self._n("feast-materialize")


def names(recipe) -> Names:
    return Names(recipe.name)


# Where deploy.image holds the project (pyproject.toml, README.md, docs/, ...: what
# `rag.documents` names) with the framework installed: the project root (`--root`) of
# the pods that read files relative to it (the RAG index job and service).
PROJECT_ROOT_IN_POD = "/app"


def labels(recipe, component: str) -> dict[str, str]:
    """Labels on every object: recommended app.kubernetes.io keys plus deploy.labels."""
    return {
        **recipe.deploy.labels,
        "app.kubernetes.io/name": recipe.name,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": GENERATED_BY,
        "mlops.dev/environment": recipe.environment,
    }


def selector_labels(recipe, component: str) -> dict[str, str]:
    """The stable subset used in selectors (never includes mutable labels)."""
    return {"app.kubernetes.io/name": recipe.name, "app.kubernetes.io/component": component}


def metadata(recipe, name: str, component: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": recipe.deploy.namespace, "labels": labels(recipe, component), **extra}


# --- secure defaults -------------------------------------------------------------------
RUN_AS_USER = 1000


def pod_security_context() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_USER,
        "runAsGroup": RUN_AS_USER,
        "fsGroup": RUN_AS_USER,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context(read_only_root: bool = True) -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": read_only_root,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


GPU_RESOURCE = "nvidia.com/gpu"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"  # set by NVIDIA GPU feature discovery


def resources(cpu: str, memory: str, gpu: float | int = 0) -> dict[str, Any]:
    """Requests equal to limits (Guaranteed QoS); GPUs as nvidia.com/gpu."""
    amounts: dict[str, Any] = {"cpu": str(cpu), "memory": str(memory)}
    if gpu:
        amounts[GPU_RESOURCE] = str(math.ceil(gpu))  # Kubernetes hands out whole GPUs
    return {"requests": dict(amounts), "limits": dict(amounts)}


def gpu_scheduling(gpu_type: str | None) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """Node selector and tolerations that put a pod on GPU nodes (of a type, if given)."""
    selector = {GPU_PRODUCT_LABEL: gpu_type} if gpu_type else {}
    tolerations = [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}]
    return selector, tolerations


def toleration(t) -> dict[str, Any]:
    """A recipe Toleration as Kubernetes writes it (empty fields left out)."""
    return {k: v for k, v in t.model_dump().items() if v is not None}


def _secret_vars(refs: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"name": var, "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}}
            for var, ref in sorted(refs.items())]


def secret_env(recipe) -> list[dict[str, Any]]:
    """Environment variables filled from the Secrets the recipe references: the tracking
    backends' (W&B's API key, online), which win over a deploy.secrets entry of the same
    name, then deploy.secrets."""
    tracked = _secret_vars(tracking_secrets(recipe))
    taken = {var["name"] for var in tracked}
    return tracked + [var for var in _secret_vars(recipe.deploy.secrets) if var["name"] not in taken]


def with_feature_store_env(recipe, secrets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`secrets` after the online store's (data.source.feast: Redis connection string,
    Postgres password) under the names feature_store.yaml references (`${FEAST_...}`),
    which Feast expands when it loads the file. Those win over a deploy.secrets entry of
    the same name: the store must get the Secret its file was written for."""
    store = _secret_vars(feature_store.secret_env(recipe)) if feature_store.enabled(recipe) else []
    taken = {var["name"] for var in store}
    return store + [var for var in secrets if var["name"] not in taken]


HF_TOKEN_ENV = "HF_TOKEN"  # where Hugging Face clients (vLLM, TGI, Ray Serve LLM) read the hub token


def secret_env_with_hub_token(recipe) -> list[dict[str, Any]]:
    """secret_env, led by model.token (LLM recipes) as HF_TOKEN, which wins over a
    deploy.secrets HF_TOKEN."""
    secrets = secret_env(recipe)
    token = getattr(recipe.model, "token", None)
    if token is None:
        return secrets
    hub = {"name": HF_TOKEN_ENV, "valueFrom": {"secretKeyRef": {"name": token.name, "key": token.key}}}
    return [hub] + [e for e in secrets if e["name"] != HF_TOKEN_ENV]


def recipe_volume(recipe) -> tuple[dict[str, Any], dict[str, Any]]:
    """(volume, mount) of the resolved recipe ConfigMap, read-only."""
    volume = {"name": "recipe", "configMap": {"name": names(recipe).recipe_configmap}}
    mount = {"name": "recipe", "mountPath": RECIPE_MOUNT_DIR, "readOnly": True}
    return volume, mount


def uses_argo_rollout(recipe) -> bool:
    """Canary and blue/green steps are driven by an Argo Rollout (see README); Ray Serve
    pods belong to KubeRay, so there the serving app routes traffic itself (Ray Serve
    LLM rolls out directly, a checked rule)."""
    on_ray = recipe.serving.backend in ("ray_serve", "ray_serve_llm")
    return recipe.rollout.strategy in ("canary", "blue_green") and not on_ray


def workload_ref(recipe) -> dict[str, str]:
    """The object that owns the serving pods, for HPA/PDB targets: the Argo Rollout when
    one drives the rollout (it references the Deployment through workloadRef), else the
    Deployment itself."""
    if uses_argo_rollout(recipe):
        return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "name": names(recipe).server}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "name": names(recipe).server}


def unique(items) -> list:
    """Items in first-seen order without repeats (dicts are unhashable, so no set)."""
    out: list = []
    for item in items:
        if item not in out:
            out.append(item)
    return out
