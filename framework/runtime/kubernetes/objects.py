"""The Kubernetes objects of one generated env dir, read from the files generate wrote,
in the order `apply --target kubernetes` applies them.

Which files: `k8s/*.yaml` and the KubeRay CRs `ray/rayjob.yaml`, `ray/rayservice.yaml`
and, for RAG, `ray/rag-index-rayjob.yaml`, `ray/rag-rayservice.yaml` (multi-document
files allowed). Not applied: `ray/serve_config.yaml` and `ray/rag_serve_config.yaml`
(embedded in their RayServices), `ray/batch-rayjob.yaml` (batch scoring runs when asked
for: by hand, or by the batch CronJob under k8s/, which carries it in a ConfigMap), the
workflows, `manifest.json`, `recipe.resolved.yaml` (it reaches the cluster as the recipe
ConfigMap), the Triton model config and the Grafana dashboard.

The order is a table, kind -> (phase, rank), ties broken by kind, then namespace and
name; a kind not in the table goes last in the serving phase (with a warning).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from framework.contracts import entrypoints
from framework.errors import Location, MlopsError, Problem

APPLIED_FILES = (
    "k8s/*.yaml", "ray/rayjob.yaml", "ray/rayservice.yaml", "ray/rag-index-rayjob.yaml", "ray/rag-rayservice.yaml",
)

CONFIG, TRAINING, SERVING = "config", "training", "serving"
PHASES = (CONFIG, TRAINING, SERVING)

# kind -> (phase, rank within the phase). Config first (what pods mount and run as: the
# RAG vector store's PersistentVolumeClaim included), then the jobs, waited for (the
# training RayJob or PyTorchJob; the RAG index RayJob, which fills the store the RAG
# RayService reads), then serving: the Service before its workload;
# the Deployment before the Rollout that adopts it (workloadRef); the AnalysisTemplate,
# DestinationRule (subsets) and VirtualService (routes) before the Rollout that names
# them; autoscaling, disruption budget, monitoring and the drift CronJob last.
ORDER: dict[str, tuple[str, int]] = {
    "Namespace": (CONFIG, 0),
    "ServiceAccount": (CONFIG, 1),
    "Role": (CONFIG, 2),
    "RoleBinding": (CONFIG, 3),
    "ConfigMap": (CONFIG, 4),
    "Secret": (CONFIG, 5),
    "NetworkPolicy": (CONFIG, 6),
    "PersistentVolumeClaim": (CONFIG, 7),
    "RayJob": (TRAINING, 0),
    "PyTorchJob": (TRAINING, 0),
    "Service": (SERVING, 0),
    "Deployment": (SERVING, 1),
    "AnalysisTemplate": (SERVING, 2),
    "DestinationRule": (SERVING, 3),
    "VirtualService": (SERVING, 4),
    "Rollout": (SERVING, 5),
    "RayService": (SERVING, 6),
    "HorizontalPodAutoscaler": (SERVING, 7),
    "PodDisruptionBudget": (SERVING, 8),
    "ServiceMonitor": (SERVING, 9),
    "PrometheusRule": (SERVING, 10),
    "CronJob": (SERVING, 11),
}
UNKNOWN = (SERVING, 1000)


@dataclass(frozen=True)
class KubeObject:
    api_version: str
    kind: str
    name: str
    namespace: str | None
    body: dict[str, Any] = field(repr=False, compare=False)
    source: str = ""  # the file it came from, relative to the env dir

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]

    @property
    def ref(self) -> str:
        """`Kind/name in namespace`, how messages name the object."""
        where = f" in {self.namespace}" if self.namespace else ""
        return f"{self.kind}/{self.name}{where}"

    @property
    def phase(self) -> str:
        return ORDER.get(self.kind, UNKNOWN)[0]

    @property
    def known(self) -> bool:
        return self.kind in ORDER


def applied(rel: str) -> bool:
    return any(fnmatch.fnmatch(rel, pattern) and rel.count("/") == pattern.count("/") for pattern in APPLIED_FILES)


def read_env_dir(env_dir: Path) -> dict[str, str]:
    """The applied files of a generated env dir, as generate wrote them."""
    files = {p.relative_to(env_dir).as_posix(): p for p in env_dir.rglob("*.yaml") if p.is_file()}
    return {rel: files[rel].read_text(encoding="utf-8") for rel in sorted(files) if applied(rel)}


def parse(files: Mapping[str, str], where: Path | None = None) -> list[KubeObject]:
    """Every object of the applied files (others are skipped), in file order."""
    objects = []
    for rel, text in sorted(files.items()):
        if not applied(rel):
            continue
        location = Location(str(where / rel) if where else rel)
        try:
            docs = [d for d in yaml.safe_load_all(text) if d is not None]
        except yaml.YAMLError as exc:
            raise MlopsError([Problem(location, "", f"not valid YAML: {exc}")]) from None
        for doc in docs:
            objects.append(_object(doc, rel, location))
    return objects


def _object(doc: Any, rel: str, location: Location) -> KubeObject:
    meta = doc.get("metadata") if isinstance(doc, dict) else None
    if not isinstance(meta, dict) or not doc.get("apiVersion") or not doc.get("kind") or not meta.get("name"):
        raise MlopsError([Problem(location, "", "not a Kubernetes object (apiVersion, kind and metadata.name are required)")])
    return KubeObject(str(doc["apiVersion"]), str(doc["kind"]), str(meta["name"]), meta.get("namespace"), doc, rel)


def sort_key(obj: KubeObject) -> tuple[int, int, str, str, str]:
    phase, rank = ORDER.get(obj.kind, UNKNOWN)
    return PHASES.index(phase), rank, obj.kind, obj.namespace or "", obj.name


def ordered(objects: Iterable[KubeObject]) -> list[KubeObject]:
    return sorted(objects, key=sort_key)


# --- what a CI deploy changes: no training job, the image its build job pushed -------------
TRAINING_COMPONENT = "training"  # app.kubernetes.io/component of the training RayJob/PyTorchJob


def is_training_job(obj: KubeObject) -> bool:
    """The training RayJob or PyTorchJob (not the RAG index RayJob, which fills a volume)."""
    labels = (obj.body.get("metadata") or {}).get("labels") or {}
    return obj.phase == TRAINING and labels.get("app.kubernetes.io/component") == TRAINING_COMPONENT


def with_register_only(obj: KubeObject, module: str = entrypoints.TRAINING) -> KubeObject:
    """A training job whose entrypoint also says --register-only (the CI pipeline: the
    version is registered without aliases; `mlops gate --promote` moves them)."""
    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            out = {}
            for key, value in node.items():
                if key == "entrypoint" and isinstance(value, str) and module in value:
                    value = f"{value} --register-only"
                elif key == "command" and isinstance(value, list) and module in value:
                    value = [*value, "--register-only"]
                out[key] = walk(value)
            return out
        if isinstance(node, list):
            return [walk(item) for item in node]
        return node

    return KubeObject(obj.api_version, obj.kind, obj.name, obj.namespace, walk(obj.body), obj.source)


def retagged(objects: Iterable[KubeObject], image: str, tag: str) -> list[KubeObject]:
    """The objects with every `image: <image>` (the recipe's deploy.image) replaced by
    the same repository at `tag`, in the RayJob manifest a ConfigMap carries too (the
    batch CronJob's); other images (Triton's, vLLM's) stay."""
    from framework.recipe.types import image_repository

    new_image = f"{image_repository(image)}:{tag}"

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: (new_image if k == "image" and v == image else walk(v)) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(item) for item in node]
        if isinstance(node, str) and "\nkind: RayJob\n" in node:
            return node.replace(f"image: {image}\n", f"image: {new_image}\n")
        return node

    return [KubeObject(o.api_version, o.kind, o.name, o.namespace, walk(o.body), o.source) for o in objects]
