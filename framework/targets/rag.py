"""RAG target (recipes with a `rag` section): indexing as a KubeRay RayJob, the RAG
service as a RayService, and the volume that carries the vector store between them.

* `ray/rag-index-rayjob.yaml`: RayJob `<recipe>-index` whose entrypoint is
  `python -m framework.runtime.rag.index <resolved recipe> --root /app --state-dir
  /app/.mlops` (the same `index_corpus` local apply runs). CPU only: a head (Ray's job
  driver runs there) sized for embedding, no workers.
* `ray/rag_serve_config.yaml`, `ray/rag-rayservice.yaml`: Ray Serve application
  `<recipe>-rag`, `framework.runtime.rag.ray_host:app` with args `{recipe, root,
  llm_endpoint}` and ingress deployment `RagServer` (`POST /query`, `GET /health`,
  `GET /metrics`), in RayService `<recipe>-rag` (CPU workers, autoscaled with the
  recipe's `serving.replicas`), which embeds the config's exact bytes. KubeRay's Service
  `<recipe>-rag-serve-svc` answers on `serving.port`.
* `k8s/rag-vectors-pvc.yaml` (rendered by the kubernetes target): PersistentVolumeClaim
  `<recipe>-rag-vectors`, ReadWriteMany, mounted in the index job's head and the RAG
  service's workers at the store's path in the pod.

Paths in the pods. deploy.image carries the project at `common.PROJECT_ROOT_IN_POD`
(`/app`): pyproject.toml, the framework, and the files `rag.documents` names. The
runtime resolves `rag.vector_store.path` against the root it is given, so the volume is
mounted exactly there (`/app/.mlops/vectors/<recipe>` for the example). The state dir
(`/app/.mlops`, the project's default, where the embedding model is unpacked) is an
emptyDir: the root filesystem stays read-only and the volume only holds the store.

The RAG pods download nothing (the embedding model ships in a package): they get
deploy.secrets (e.g. OPENAI_API_KEY for an external `rag.llm_endpoint`) but not
model.token.

Generation endpoint (`llm_endpoint`): `rag.llm_endpoint` when set; else the recipe's own
server inside the cluster: the Deployment's Service `http://<recipe>.<namespace>.svc.
cluster.local:<serving.port>` (vllm, sglang, tgi; through Istio's routes when in the mesh), or
KubeRay's serve Service of the Ray Serve LLM RayService, `<recipe>-serve-serve-svc`.
"""

from __future__ import annotations

import math
import posixpath
from typing import Any

import yaml

from framework.contracts import entrypoints
from framework.contracts.ray import RAG_DEPLOYMENT, RAG_MAX_ONGOING_REQUESTS, runtime_env
from framework.errors import MlopsError, Problem
from framework.recipe.training import RayHead
from framework.recipe.types import quantity_value
from framework.targets import Artifact, common
from framework.targets import ray as ray_target
from framework.targets.common import names

INDEX_MODULE = entrypoints.RAG_INDEX
SERVICE_IMPORT_PATH = entrypoints.RAG_APP

INDEX_COMPONENT = "rag-index"
SERVICE_COMPONENT = "rag"

INDEX_RAYJOB = "ray/rag-index-rayjob.yaml"
SERVE_CONFIG = "ray/rag_serve_config.yaml"
RAYSERVICE = "ray/rag-rayservice.yaml"
VECTORS_PVC = "rag-vectors-pvc.yaml"  # under the kubernetes target's k8s/

# The index job: the head runs Ray's job driver, i.e. the indexer itself (chunking and
# sentence embeddings on CPU), so it is sized for that; no worker group.
INDEX_HEAD_RESOURCES = ("2", "4Gi")
INDEX_DEADLINE_SECONDS = 3600
INDEX_RETRIES = 1  # indexing is incremental and idempotent: a retry redoes only what is missing

# Each RAG replica: a retriever (the embedding model, the Chroma collection) and an HTTP
# client of the generation server; one replica per worker pod of this size.
REPLICA_RESOURCES = ("2", "4Gi")

# The vector store's volume. ReadWriteMany: the index job writes it, every RAG replica
# (possibly on other nodes) reads it. The cluster's default StorageClass must offer RWX
# (NFS, CephFS, EFS, Filestore, Azure Files...); the size fits the vectors and texts of
# ~100k chunks of all-MiniLM-L6-v2 (384 floats each) with room to spare.
VECTORS_SIZE = "5Gi"
VECTORS_ACCESS_MODE = "ReadWriteMany"
VECTORS_VOLUME = "rag-vectors"

# Project.discover's default state_dir (framework/project.py): where the runtime unpacks
# the embedding model and keeps its locks. An emptyDir, like every writable path here.
STATE_DIR_IN_POD = f"{common.PROJECT_ROOT_IN_POD}/.mlops"
STATE_VOLUME = "mlops-state"
STATE_SIZE_LIMIT = "2Gi"


def enabled(recipe) -> bool:
    return getattr(recipe, "rag", None) is not None


# --- paths in the pods -------------------------------------------------------------------


def store_path_in_pod(recipe) -> str:
    """Where the runtime, given `--root /app`, opens `rag.vector_store.path` in a pod
    (`~` is the pods' HOME, /tmp); the volume is mounted there."""
    path = recipe.rag.vector_store.path
    if path == "~" or path.startswith("~/"):
        path = ray_target.TMP_DIR + path[1:]
    store = posixpath.normpath(posixpath.join(common.PROJECT_ROOT_IN_POD, path))
    for taken in (common.PROJECT_ROOT_IN_POD, ray_target.TMP_DIR, common.RECIPE_MOUNT_DIR):
        if store == "/" or store == taken or taken.startswith(store + "/"):
            raise MlopsError([Problem(None, "rag.vector_store.path", (
                f"'{recipe.rag.vector_store.path}' is {store} in the pods (project root "
                f"{common.PROJECT_ROOT_IN_POD}), where the vector store's volume would cover {taken}; "
                "choose a folder below the project root, e.g. .mlops/vectors/<name>"))])
    return store


def _volumes(recipe) -> tuple[tuple[dict[str, Any], dict[str, Any]], ...]:
    """(volume, mount) pairs of the pods that open the store: the state dir (an emptyDir,
    unless the store's volume already covers it) and the store's volume."""
    store = store_path_in_pod(recipe)
    vectors = (
        {"name": VECTORS_VOLUME, "persistentVolumeClaim": {"claimName": names(recipe).rag_vectors}},
        {"name": VECTORS_VOLUME, "mountPath": store},
    )
    if store == STATE_DIR_IN_POD or STATE_DIR_IN_POD.startswith(store + "/"):
        return (vectors,)
    state = (
        {"name": STATE_VOLUME, "emptyDir": {"sizeLimit": STATE_SIZE_LIMIT}},
        {"name": STATE_VOLUME, "mountPath": STATE_DIR_IN_POD},
    )
    return (state, vectors)  # parent before child: the store may lie inside the state dir


# --- the volume ----------------------------------------------------------------------------


def vectors_pvc(recipe) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": common.metadata(recipe, names(recipe).rag_vectors, SERVICE_COMPONENT),
        "spec": {
            "accessModes": [VECTORS_ACCESS_MODE],
            "volumeMode": "Filesystem",
            "resources": {"requests": {"storage": VECTORS_SIZE}},
        },
    }


# --- indexing: RayJob ----------------------------------------------------------------------


def index_entrypoint() -> str:
    return (
        f"python -m {INDEX_MODULE} {common.recipe_path_in_pod()} "
        f"--root {common.PROJECT_ROOT_IN_POD} --state-dir {STATE_DIR_IN_POD}"
    )


def _runtime_env(recipe, cpus: str) -> dict[str, Any]:
    env = runtime_env(recipe)
    # The driver is a plain process on the head (no Ray task): give torch the head's CPUs.
    env["env_vars"]["OMP_NUM_THREADS"] = str(max(1, math.floor(quantity_value(cpus))))
    return env


def index_rayjob(recipe) -> dict[str, Any]:
    cpu, memory = INDEX_HEAD_RESOURCES
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayJob",
        "metadata": common.metadata(recipe, names(recipe).rag_index, INDEX_COMPONENT),
        "spec": {
            "entrypoint": index_entrypoint(),
            "runtimeEnvYAML": yaml.safe_dump(_runtime_env(recipe, cpu), sort_keys=True, default_flow_style=False),
            "shutdownAfterJobFinishes": True,
            "ttlSecondsAfterFinished": ray_target.RAYJOB_TTL_SECONDS,
            "activeDeadlineSeconds": INDEX_DEADLINE_SECONDS,
            "backoffLimit": INDEX_RETRIES,
            "submitterPodTemplate": ray_target._submitter_template(recipe, INDEX_COMPONENT),
            "rayClusterSpec": {
                "rayVersion": ray_target.RAY_VERSION,
                # Head only: the entrypoint runs on the head and starts no Ray task.
                "headGroupSpec": ray_target._head_group(
                    recipe, INDEX_COMPONENT, recipe.deploy.image, cpu, memory,
                    service_account=recipe.deploy.service_account, scratch=_volumes(recipe), hub_token=False,
                ),
            },
        },
    }


# --- serving: Ray Serve config and RayService ----------------------------------------------


def llm_endpoint(recipe) -> str:
    """The generation server the RAG service calls (OpenAI API, or Ollama's)."""
    if recipe.rag.llm_endpoint:
        return recipe.rag.llm_endpoint
    port = recipe.serving.port
    if recipe.serving.backend == "ray_serve_llm":
        host = f"{names(recipe).ray_service}-serve-svc"  # KubeRay's serve Service of the RayService
    else:
        host = names(recipe).service  # the serving Deployment's Service (vllm, sglang, tgi)
    return f"http://{host}.{recipe.deploy.namespace}.svc.cluster.local:{port}"


def target_ongoing_requests(recipe) -> int:
    return max(1, math.floor(RAG_MAX_ONGOING_REQUESTS * recipe.serving.replicas.target_utilization / 100))


def serve_config(recipe) -> dict[str, Any]:
    """What `serve deploy` and RayService.serveConfigV2 take (ServeDeploySchema)."""
    replicas = recipe.serving.replicas
    cpu, _ = REPLICA_RESOURCES
    deployment = {
        "name": RAG_DEPLOYMENT,
        "max_ongoing_requests": RAG_MAX_ONGOING_REQUESTS,
        "autoscaling_config": {
            "min_replicas": replicas.min,
            "max_replicas": replicas.max,
            "target_ongoing_requests": target_ongoing_requests(recipe),
        },
        # One replica per worker pod, which is sized for it (its CPUs are the replica's).
        "max_replicas_per_node": 1,
        "ray_actor_options": {"num_cpus": quantity_value(cpu)},
    }
    return {
        "proxy_location": "EveryNode",
        "http_options": {"host": "0.0.0.0", "port": recipe.serving.port},
        "applications": [
            {
                "name": names(recipe).rag_service,
                "route_prefix": "/",
                "import_path": SERVICE_IMPORT_PATH,
                "args": {
                    "recipe": common.recipe_path_in_pod(),
                    "root": common.PROJECT_ROOT_IN_POD,
                    "llm_endpoint": llm_endpoint(recipe),
                },
                "runtime_env": runtime_env(recipe),
                "deployments": [deployment],
            }
        ],
    }


def rayservice(recipe, serve_config_text: str) -> dict[str, Any]:
    replicas = recipe.serving.replicas
    serve_port = (("serve", recipe.serving.port),)  # KubeRay's serve Service targets the port named "serve"
    head = RayHead()  # the Serve controller and proxy: the training head's defaults fit
    cpu, memory = REPLICA_RESOURCES
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": common.metadata(recipe, names(recipe).rag_service, SERVICE_COMPONENT),
        "spec": {
            "serveConfigV2": serve_config_text,
            # The head holds no replica: out of the serve Service unless replicas may be 0.
            "excludeHeadPodFromServeSvc": replicas.min > 0,
            "rayClusterConfig": {
                "rayVersion": ray_target.RAY_VERSION,
                "enableInTreeAutoscaling": True,
                "autoscalerOptions": ray_target._autoscaler_options(),
                "headGroupSpec": ray_target._head_group(
                    recipe, SERVICE_COMPONENT, recipe.deploy.image, head.cpu, head.memory, extra_ports=serve_port,
                    service_account=None,  # KubeRay binds the autoscaler's Role to its own account (see ray.rayservice)
                    hub_token=False,
                ),
                "workerGroupSpecs": [
                    ray_target._worker_group(
                        recipe, SERVICE_COMPONENT,
                        image=recipe.deploy.image,
                        count=(replicas.min, replicas.min, replicas.max),
                        cpu=cpu,
                        memory=memory,
                        gpus=0,
                        gpu_type=None,
                        extra_ports=serve_port,
                        scratch=_volumes(recipe),
                        hub_token=False,
                    )
                ],
            },
        },
    }


# --- entry point ---------------------------------------------------------------------------


def render(recipe) -> list[Artifact]:
    if not enabled(recipe):
        return []
    # The RayService embeds the very bytes of rag_serve_config.yaml (as ray.render does).
    config_text = common.yaml_text(recipe, serve_config(recipe))
    return [
        Artifact(INDEX_RAYJOB, common.yaml_text(recipe, index_rayjob(recipe))),
        Artifact(SERVE_CONFIG, config_text),
        Artifact(RAYSERVICE, common.yaml_text(recipe, rayservice(recipe, config_text))),
    ]
