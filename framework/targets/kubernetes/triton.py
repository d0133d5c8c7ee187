"""The Triton container of the serving Deployment, and the init container that fills
its model repository from MLflow when the recipe names no remote repository."""

from __future__ import annotations

from framework.contracts import entrypoints
from framework.errors import MlopsError
from framework.targets import common
from framework.targets.kubernetes import pods

GRPC_PORT = 8001
METRICS_PORT = 8002
LOCAL_REPOSITORY = "/models"
STARTUP_SECONDS = 900  # loading (and, on GPUs, optimising) every model of the repository


def ports(recipe) -> list[pods.Port]:
    if recipe.serving.port in (GRPC_PORT, METRICS_PORT):
        raise MlopsError(
            f"serving.port: {recipe.serving.port} is Triton's gRPC or metrics port; "
            f"choose another than {GRPC_PORT} and {METRICS_PORT}"
        )
    return [
        pods.Port("http", recipe.serving.port, "http"),
        pods.Port("grpc", GRPC_PORT, "grpc"),
        pods.Port("metrics", METRICS_PORT, "http", public=False),
    ]


def args(recipe) -> list[str]:
    repository = recipe.serving.model_repository or LOCAL_REPOSITORY
    by_name = {p.name: p.number for p in ports(recipe)}
    return [
        "tritonserver",
        f"--model-repository={repository}",
        f"--http-port={by_name['http']}",
        f"--grpc-port={by_name['grpc']}",
        f"--metrics-port={by_name['metrics']}",
        "--metrics-config=summary_latencies=true",
    ]


def server(recipe) -> pods.ServerPod:
    serving = recipe.serving
    tmp_volume, tmp_mount = pods.tmp_dir()
    _, recipe_mount = common.recipe_volume(recipe)
    volumes, mounts, init_containers = [tmp_volume], [tmp_mount, recipe_mount], []
    cpu_memory = common.resources(serving.resources.cpu, serving.resources.memory)
    if not serving.model_repository:
        # The champion version comes from the MLflow registry into a pod-local repository;
        # fetch_model also writes the config.pbtxt the triton target renders from the recipe.
        models_volume, models_mount = pods.empty_dir("models", LOCAL_REPOSITORY, size_limit="5Gi")
        volumes.append(models_volume)
        mounts.append({**models_mount, "readOnly": True})
        init_containers.append(
            pods.runtime_container(
                recipe, "fetch-model", entrypoints.FETCH_MODEL, LOCAL_REPOSITORY,
                resources=cpu_memory,  # as much as the server: the pod's requests stay the same
                mounts=[models_mount, tmp_mount],
            )
        )
    gpus = serving.resources.gpu
    container = pods.container(
        "triton",
        serving.image,
        args=args(recipe),
        resources=common.resources(serving.resources.cpu, serving.resources.memory, gpus),
        mounts=mounts,
        env=[{"name": "HOME", "value": "/tmp"}, *common.secret_env(recipe)],
        ports=[p.container_port() for p in ports(recipe)],
        probes={
            "startupProbe": pods.startup_probe("/v2/health/live", "http", STARTUP_SECONDS),
            "readinessProbe": pods.http_probe("/v2/health/ready", "http", period=5),
            "livenessProbe": pods.http_probe("/v2/health/live", "http", period=10),
        },
    )
    return pods.ServerPod(
        containers=[container],
        init_containers=init_containers,
        volumes=volumes,
        ports=ports(recipe),
        gpus=gpus,
        gpu_type=serving.resources.gpu_type,
        startup_seconds=STARTUP_SECONDS,
    )
