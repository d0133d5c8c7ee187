"""The vLLM OpenAI-compatible server container of the serving Deployment."""

from __future__ import annotations

from framework.contracts.llm import vllm_args
from framework.targets import common
from framework.targets.kubernetes import pods

CACHE_DIR = "/cache"  # Hugging Face weights, vLLM/torch.compile/Triton kernel caches
SHM_SIZE = "8Gi"  # NCCL between tensor-parallel ranks and the tokenizer workers
STARTUP_SECONDS = 1800  # weights download, load, profiling and CUDA graph capture


def ports(recipe) -> list[pods.Port]:
    # The OpenAI API, /health and /metrics all share one port.
    return [pods.Port("http", recipe.serving.port, "http")]


def args(recipe) -> list[str]:
    """The server's arguments (framework/contracts/llm.py: local RAG runs the same command)."""
    return vllm_args(recipe)


def env(recipe) -> list[dict]:
    """Writable homes for every cache on the read-only root, telemetry off, hub token."""
    return with_hub_token(recipe, {
        "HOME": CACHE_DIR,
        "HF_HOME": f"{CACHE_DIR}/huggingface",
        "VLLM_CACHE_ROOT": f"{CACHE_DIR}/vllm",
        "TRITON_CACHE_DIR": f"{CACHE_DIR}/triton",
        "TORCHINDUCTOR_CACHE_DIR": f"{CACHE_DIR}/torchinductor",
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
    })


def with_hub_token(recipe, values: dict[str, str]) -> list[dict]:
    """`values` as env entries, then model.token as HF_TOKEN and deploy.secrets."""
    return [{"name": k, "value": v} for k, v in values.items()] + common.secret_env_with_hub_token(recipe)


def server(recipe) -> pods.ServerPod:
    return gpu_server(recipe, "vllm", args(recipe), env(recipe), ports(recipe))


def gpu_server(recipe, name: str, arguments: list[str], environment: list[dict], served_ports: list[pods.Port],
               cache_dir: str = CACHE_DIR, shm_size: str = SHM_SIZE, startup_seconds: int = STARTUP_SECONDS,
               command: list[str] | None = None) -> pods.ServerPod:
    """An LLM server pod (vLLM, SGLang, TGI): one GPU per tensor-parallel rank, writable
    caches, shared memory for NCCL, the recipe, and /health for every probe. `command`
    replaces the image's entrypoint (none: the image's, given `arguments`)."""
    serving = recipe.serving
    gpus = serving.tensor_parallel_size  # one GPU per tensor-parallel rank
    tmp_volume, tmp_mount = pods.tmp_dir()
    # No sizeLimit on the weights cache: its size is the model's, which the recipe does not
    # state, and a kubelet evicts a pod whose emptyDir outgrows its limit.
    cache_volume, cache_mount = pods.empty_dir("cache", cache_dir)
    shm_volume, shm_mount = pods.shm_dir(shm_size)
    _, recipe_mount = common.recipe_volume(recipe)
    container = pods.container(
        name,
        serving.image,
        command=command,
        args=arguments,
        resources=common.resources(serving.resources.cpu, serving.resources.memory, gpus),
        mounts=[tmp_mount, cache_mount, shm_mount, recipe_mount],
        env=environment,
        ports=[p.container_port() for p in served_ports],
        probes={
            "startupProbe": pods.startup_probe("/health", "http", startup_seconds),
            "readinessProbe": pods.http_probe("/health", "http", period=5),
            "livenessProbe": pods.http_probe("/health", "http", period=15, failures=4),
        },
    )
    return pods.ServerPod(
        containers=[container],
        volumes=[tmp_volume, cache_volume, shm_volume],
        ports=served_ports,
        gpus=gpus,
        gpu_type=serving.resources.gpu_type,
        startup_seconds=startup_seconds,
    )
