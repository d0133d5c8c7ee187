"""KubeRay target: the training RayJob, the Ray Serve config and the RayService.

Pure: builds dicts and dumps them with `common.yaml_text`; imports no ray. The
contract with the runtime is small and lives here as constants:

* the RayJob entrypoint is `python -m framework.runtime.training <resolved recipe>`,
  the same command `mlops apply --target local` runs on an embedded Ray;
* Ray Serve imports `framework.runtime.serving.ray_host:app`, an application *builder*
  (Ray only passes `args` to a builder function), called with
  `{"recipe": <resolved recipe>}`; its deployment is named `SERVE_DEPLOYMENT`
  (framework/contracts/ray.py, with the runtime env every Ray job and app gets) so the
  `deployments` overrides below apply to it (Serve rejects unknown names). Its RayService
  runs Serve's high-throughput mode (HAProxy, direct ingress: contracts/ray.py SERVE_ENV).
* Ray Serve LLM (backend ray_serve_llm) needs no code of ours: the application is
  Ray's own builder `ray.serve.llm:build_openai_app` (an OpenAI-compatible ingress in
  front of vLLM engine replicas), given one `LLMConfig` made from the recipe. Its
  `engine_kwargs` are vLLM engine arguments of the vLLM release Ray pins
  (`RAY_LLM_VLLM_VERSION`), which the tests read from that release's source.
"""

from __future__ import annotations

import math
from typing import Any

import yaml

from framework.contracts import entrypoints
from framework.contracts.llm import served_model_name
from framework.contracts.ray import SERVE_DEPLOYMENT, SERVE_ENV, SERVE_LOGGING, runtime_env
from framework.recipe.training import RayHead
from framework.recipe.types import duration_seconds, quantity_value
from framework.targets import Artifact
from framework.targets import common
from framework.targets.common import names

RAY_VERSION = "2.60.0"  # must match the Ray in deploy.image and serving.image
TRAIN_MODULE = entrypoints.TRAINING
SERVE_IMPORT_PATH = entrypoints.SERVE_APP
LLM_IMPORT_PATH = "ray.serve.llm:build_openai_app"
RAY_LLM_VLLM_VERSION = "0.29.0"  # ray[llm]==2.60.0 pins vllm==0.29.0 (a test reads Ray's metadata)
SHM_SIZE = "8Gi"  # /dev/shm of Ray Serve LLM workers: NCCL between tensor-parallel vLLM ranks

# With shutdownAfterJobFinishes the cluster (GPU nodes included) is deleted this long after
# the job ends. Logs survive it: the submitter Job, which tails them, is kept.
RAYJOB_TTL_SECONDS = 600

TMP_DIR = "/tmp"
# Ports named like KubeRay's defaults. Every Ray pod exports its metrics (Ray Serve's
# app metrics included, see targets/metrics.py) on the port named "metrics".
METRICS_PORT = ("metrics", 8080)
HEAD_PORTS = (("gcs-server", 6379), ("dashboard", 8265), ("client", 10001), METRICS_PORT)

# Small fixed sizes for the pods Ray runs beside the head and workers.
SUBMITTER_RESOURCES = ("500m", "1Gi")
AUTOSCALER_RESOURCES = ("500m", "512Mi")


# --- shared pieces ------------------------------------------------------------------


def cpu_quantity(cpus: float) -> str:
    """A CPU count as a Kubernetes quantity: 4.0 -> "4", 0.5 -> "500m"."""
    return str(int(cpus)) if float(cpus).is_integer() else f"{round(cpus * 1000)}m"


def _container_env(recipe, with_secrets: bool = True, hub_token: bool = True, extra=None) -> list[dict[str, Any]]:
    # Ray writes under /tmp/ray and Ray Train defaults its storage to ~/ray_results:
    # HOME inside the /tmp emptyDir lets the root filesystem stay read-only.
    # RAY_USAGE_STATS_ENABLED must be in the pod env: `ray start` reads it, not the job.
    # `hub_token`: model.token as HF_TOKEN too (pods that download the model). The online
    # store's Secrets go to every pod running the recipe (training, serving lookups).
    env = [{"name": "HOME", "value": TMP_DIR}, {"name": "RAY_USAGE_STATS_ENABLED", "value": "0"}]
    env += [{"name": k, "value": v} for k, v in (extra or {}).items()]
    if not with_secrets:
        return env
    secrets = common.secret_env_with_hub_token(recipe) if hub_token else common.secret_env(recipe)
    return env + common.with_feature_store_env(recipe, secrets)


def _tmp_volume() -> tuple[dict[str, Any], dict[str, Any]]:
    return {"name": "tmp", "emptyDir": {}}, {"name": "tmp", "mountPath": TMP_DIR}


def _shm_volume() -> tuple[dict[str, Any], dict[str, Any]]:
    volume = {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": SHM_SIZE}}
    return volume, {"name": "dshm", "mountPath": "/dev/shm"}


def _pod_template(
    recipe,
    component: str,
    container: dict[str, Any],
    *,
    service_account: str | None,
    node_selector: dict[str, str] | None = None,
    tolerations: list[dict[str, Any]] | None = None,
    recipe_mount: bool = True,
    scratch: tuple[tuple[dict[str, Any], dict[str, Any]], ...] = (),
) -> dict[str, Any]:
    """A restricted pod: non-root, no privilege escalation, read-only root with an
    emptyDir at /tmp (and the `scratch` (volume, mount) pairs), the resolved recipe
    mounted read-only, no API token (Ray pods do not call the Kubernetes API;
    KubeRay's autoscaler sidecar is the exception)."""
    tmp_volume, tmp_mount = _tmp_volume()
    volumes, mounts = [tmp_volume], [tmp_mount]
    for volume, mount in scratch:
        volumes.append(volume)
        mounts.append(mount)
    if recipe_mount:
        recipe_vol, recipe_mnt = common.recipe_volume(recipe)
        volumes.append(recipe_vol)
        mounts.append(recipe_mnt)
    spec: dict[str, Any] = {
        "securityContext": common.pod_security_context(),
        "containers": [{**container, "securityContext": common.container_security_context(), "volumeMounts": mounts}],
        "volumes": volumes,
    }
    if service_account:
        spec["serviceAccountName"] = service_account
        spec["automountServiceAccountToken"] = False
    selector = {**recipe.deploy.node_selector, **(node_selector or {})}
    if selector:
        spec["nodeSelector"] = selector
    all_tolerations = common.unique([common.toleration(t) for t in recipe.deploy.tolerations] + (tolerations or []))
    if all_tolerations:
        spec["tolerations"] = all_tolerations
    return {"metadata": {"labels": common.labels(recipe, component)}, "spec": spec}


def _head_group(recipe, component: str, image: str, cpu: str, memory: str, extra_ports=(), hub_token: bool = True,
                num_cpus: int = 0, env: dict[str, str] | None = None, **pod) -> dict[str, Any]:
    container = {
        "name": "ray-head",
        "image": image,
        "env": _container_env(recipe, hub_token=hub_token, extra=env),
        "ports": [{"name": n, "containerPort": p} for n, p in (*HEAD_PORTS, *extra_ports)],
        "resources": common.resources(cpu, memory),
    }
    return {
        # num-cpus 0: the head only coordinates (GCS, dashboard, job driver, Serve
        # controller); training workers and Serve replicas never land on it. (The batch
        # RayJob gives it one: a CPU beyond what its actor pool takes, for Ray Data's reads.)
        "rayStartParams": {"dashboard-host": "0.0.0.0", "num-cpus": str(num_cpus)},
        "template": _pod_template(recipe, component, container, **pod),
    }


def _worker_group(
    recipe,
    component: str,
    *,
    image: str,
    count: tuple[int, int, int],
    cpu: str,
    memory: str,
    gpus: int,
    gpu_type: str | None,
    node_selector: dict[str, str] | None = None,
    tolerations: list[dict[str, Any]] | None = None,
    extra_ports=(),
    shm: bool = False,
    scratch: tuple[tuple[dict[str, Any], dict[str, Any]], ...] = (),
    hub_token: bool = True,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    replicas, min_replicas, max_replicas = count
    # A memory-backed /dev/shm where NCCL needs one (the runtime's 64Mi is too small).
    scratch = ((_shm_volume(),) if shm else ()) + tuple(scratch)
    container = {
        "name": "ray-worker",
        "image": image,
        "env": _container_env(recipe, hub_token=hub_token, extra=env),
        "ports": [{"name": n, "containerPort": p} for n, p in (METRICS_PORT, *extra_ports)],
        "resources": common.resources(cpu, memory, gpus),
    }
    selector, tols = dict(node_selector or {}), list(tolerations or [])
    start_params: dict[str, str] = {}
    if gpus:
        gpu_selector, gpu_tolerations = common.gpu_scheduling(gpu_type)
        selector, tols = {**gpu_selector, **selector}, gpu_tolerations + tols
        start_params["num-gpus"] = str(gpus)
    return {
        "groupName": "workers",
        "replicas": replicas,
        "minReplicas": min_replicas,
        "maxReplicas": max_replicas,
        "rayStartParams": start_params,
        "template": _pod_template(
            recipe, component, container,
            service_account=recipe.deploy.service_account, node_selector=selector, tolerations=tols,
            scratch=scratch,
        ),
    }


# --- training: RayJob ---------------------------------------------------------------


def train_entrypoint() -> str:
    return f"python -m {TRAIN_MODULE} {common.recipe_path_in_pod()}"


def _submitter_template(recipe, component: str = "training") -> dict[str, Any]:
    """The pod that runs `ray job submit` (KubeRay fills in the command when none is
    given). Declared so it is as locked down as the cluster's pods; no secrets."""
    container = {
        "name": "ray-job-submitter",
        "image": recipe.deploy.image,  # same Ray version as the head, as KubeRay's default does
        "env": _container_env(recipe, with_secrets=False),
        "resources": common.resources(*SUBMITTER_RESOURCES),
    }
    template = _pod_template(
        recipe, component, container, service_account=recipe.deploy.service_account, recipe_mount=False
    )
    template["spec"]["restartPolicy"] = "Never"  # a Job's pods must not restart in place
    return template


def rayjob(recipe) -> dict[str, Any]:
    training = recipe.training
    spot = training.spot
    worker_selector: dict[str, str] = {}
    worker_tolerations: list[dict[str, Any]] = []
    if spot.enabled:
        # Only workers go on spot nodes: losing the head loses the whole job.
        worker_selector = dict(spot.node_selector)
        worker_tolerations = [common.toleration(t) for t in spot.tolerations]
    gpus = math.ceil(training.gpus_per_worker)  # Kubernetes only hands out whole GPUs
    name = names(recipe).train_job
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayJob",
        "metadata": common.metadata(recipe, name, "training"),
        "spec": {
            "entrypoint": train_entrypoint(),
            "runtimeEnvYAML": yaml.safe_dump(runtime_env(recipe), sort_keys=True, default_flow_style=False),
            "shutdownAfterJobFinishes": True,
            "ttlSecondsAfterFinished": RAYJOB_TTL_SECONDS,
            "activeDeadlineSeconds": int(duration_seconds(training.timeout)),
            # Each retry is a fresh cluster running the same entrypoint, which resumes
            # from the last checkpoint (training.checkpoint), so a spot preemption costs
            # at most checkpoint.every_epochs epochs. Without spot a failure is final.
            "backoffLimit": spot.max_retries if spot.enabled else 0,
            "submitterPodTemplate": _submitter_template(recipe),
            "rayClusterSpec": {
                "rayVersion": RAY_VERSION,
                "headGroupSpec": _head_group(
                    recipe, "training", recipe.deploy.image, training.head.cpu, training.head.memory,
                    service_account=recipe.deploy.service_account,
                ),
                "workerGroupSpecs": [
                    _worker_group(
                        recipe, "training",
                        image=recipe.deploy.image,
                        # fixed size: Ray Train needs all of its workers at once
                        count=(training.workers,) * 3,
                        cpu=cpu_quantity(training.cpus_per_worker),
                        memory=training.memory_per_worker,
                        gpus=gpus,
                        gpu_type=training.gpu_type,
                        node_selector=worker_selector,
                        tolerations=worker_tolerations,
                    )
                ],
            },
        },
    }


# --- serving: Ray Serve config and RayService ---------------------------------------


def target_ongoing_requests(serving) -> int:
    """target_utilization (%) of the requests a replica accepts at once; the Serve
    autoscaler adds replicas when the average goes above it."""
    return max(1, math.floor(serving.max_ongoing_requests * serving.replicas.target_utilization / 100))


def serve_config(recipe) -> dict[str, Any]:
    """What `serve deploy` and RayService.serveConfigV2 take (ray.serve.schema.ServeDeploySchema)."""
    if recipe.serving.backend == "ray_serve_llm":
        return llm_serve_config(recipe)
    serving = recipe.serving
    resources = serving.resources
    deployment = {
        "name": SERVE_DEPLOYMENT,
        # >= max_batch_size (a checked rule), else batches never fill
        "max_ongoing_requests": serving.max_ongoing_requests,
        "autoscaling_config": {
            "min_replicas": serving.replicas.min,
            "max_replicas": serving.replicas.max,
            "target_ongoing_requests": target_ongoing_requests(serving),
        },
        # One replica per worker pod, whose size is the replica's: KubeRay rounds a
        # pod's CPUs up for Ray, which would otherwise pack replicas onto fewer CPUs.
        "max_replicas_per_node": 1,
        "ray_actor_options": {
            "num_cpus": quantity_value(resources.cpu),
            "num_gpus": resources.gpu,
            "memory": int(quantity_value(resources.memory)),
        },
        "logging_config": SERVE_LOGGING,
    }
    return {
        "proxy_location": "EveryNode",
        "http_options": {"host": "0.0.0.0", "port": serving.port},
        "applications": [
            {
                "name": recipe.name,
                "route_prefix": "/",
                "import_path": SERVE_IMPORT_PATH,
                "args": {"recipe": common.recipe_path_in_pod()},
                "runtime_env": runtime_env(recipe),
                "deployments": [deployment],
            }
        ],
    }


def llm_engine_kwargs(recipe) -> dict[str, Any]:
    """vLLM engine arguments (AsyncEngineArgs fields; Ray sets model, served_model_name
    and distributed_executor_backend itself and refuses them here)."""
    serving, model = recipe.serving, recipe.model
    kwargs: dict[str, Any] = {
        "tensor_parallel_size": serving.tensor_parallel_size,
        "gpu_memory_utilization": serving.gpu_memory_utilization,
        "max_model_len": serving.max_model_len or model.max_model_len,
        "max_num_seqs": serving.max_num_seqs,
        "dtype": model.dtype,
    }
    if model.quantization != "none":
        kwargs["quantization"] = model.quantization
    if model.revision:
        kwargs["revision"] = model.revision
    if model.trust_remote_code:
        kwargs["trust_remote_code"] = True
    return kwargs


def llm_config(recipe) -> dict[str, Any]:
    """One Ray Serve LLM `LLMConfig`: the model, its engine, its Serve deployment."""
    serving = recipe.serving
    return {
        "model_loading_config": {
            "model_id": served_model_name(recipe),  # what clients ask for
            "model_source": recipe.model.source,
        },
        "engine_kwargs": llm_engine_kwargs(recipe),
        "deployment_config": {
            "max_ongoing_requests": serving.max_ongoing_requests,
            "autoscaling_config": {
                "min_replicas": serving.replicas.min,
                "max_replicas": serving.replicas.max,
                "target_ongoing_requests": target_ongoing_requests(serving),
            },
        },
        "runtime_env": {"env_vars": {"RAY_USAGE_STATS_ENABLED": "0", "VLLM_NO_USAGE_STATS": "1", "DO_NOT_TRACK": "1"}},
    }


def llm_serve_config(recipe) -> dict[str, Any]:
    """Ray Serve LLM's OpenAI app (`/v1/chat/completions`, `/v1/completions`,
    `/v1/models`) on serving.port. Replica resources come from the engine: one GPU
    per tensor-parallel rank, placed by Ray Serve LLM itself."""
    return {
        "proxy_location": "EveryNode",
        "http_options": {"host": "0.0.0.0", "port": recipe.serving.port},
        "applications": [
            {
                "name": recipe.name,
                "route_prefix": "/",
                "import_path": LLM_IMPORT_PATH,
                "args": {"llm_configs": [llm_config(recipe)]},
            }
        ],
    }


def _autoscaler_options() -> dict[str, Any]:
    # KubeRay injects the autoscaler as a sidecar of the head; lock it down the same way
    # (the head pod already has the /tmp volume).
    _, tmp_mount = _tmp_volume()
    return {
        "upscalingMode": "Default",
        "resources": common.resources(*AUTOSCALER_RESOURCES),
        "securityContext": common.container_security_context(),
        "env": [{"name": "HOME", "value": TMP_DIR}],
        "volumeMounts": [tmp_mount],
    }


def rayservice(recipe, serve_config_text: str) -> dict[str, Any]:
    serving = recipe.serving
    resources = serving.resources
    replicas = serving.replicas
    serve_port = (("serve", serving.port),)  # KubeRay's serve Service targets the port named "serve"
    head = RayHead()  # serving has no head section: the training head's defaults fit the Serve controller
    env = SERVE_ENV if serving.backend == "ray_serve" else None  # every pod: HAProxy on the serve port
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayService",
        "metadata": common.metadata(recipe, names(recipe).ray_service, "serving"),
        "spec": {
            "serveConfigV2": serve_config_text,
            # The head holds no replica; keep it out of the serve Service unless the workers
            # may scale to zero, when only the head's proxy can take the request that wakes them.
            "excludeHeadPodFromServeSvc": replicas.min > 0,
            "rayClusterConfig": {
                "rayVersion": RAY_VERSION,
                # Ray's autoscaler adds worker pods as Serve adds replicas (min..max).
                "enableInTreeAutoscaling": True,
                "autoscalerOptions": _autoscaler_options(),
                "headGroupSpec": _head_group(
                    recipe, "serving", serving.image, head.cpu, head.memory, extra_ports=serve_port, env=env,
                    # No serviceAccountName: KubeRay then creates one for this cluster and
                    # binds the autoscaler's pod-patching Role to it alone, rather than to
                    # deploy.service_account, which every other pod of the recipe uses.
                    service_account=None,
                ),
                "workerGroupSpecs": [
                    _worker_group(
                        recipe, "serving",
                        image=serving.image,
                        count=(replicas.min, replicas.min, replicas.max),
                        cpu=resources.cpu, memory=resources.memory, gpus=resources.gpu, gpu_type=resources.gpu_type,
                        extra_ports=serve_port, env=env,
                        shm=serving.backend == "ray_serve_llm",  # tensor-parallel vLLM ranks
                    )
                ],
            },
        },
    }


# --- entry point --------------------------------------------------------------------


def render(recipe) -> list[Artifact]:
    artifacts: list[Artifact] = []
    if recipe.training is not None and recipe.training.engine == "ray":
        artifacts.append(Artifact("ray/rayjob.yaml", common.yaml_text(recipe, rayjob(recipe))))
    if recipe.serving.backend in ("ray_serve", "ray_serve_llm"):
        # The RayService embeds the very bytes of serve_config.yaml, so what
        # `serve deploy` and KubeRay run cannot drift apart.
        config_text = common.yaml_text(recipe, serve_config(recipe))
        artifacts.append(Artifact("ray/serve_config.yaml", config_text))
        artifacts.append(Artifact("ray/rayservice.yaml", common.yaml_text(recipe, rayservice(recipe, config_text))))
    return artifacts
