"""The Hugging Face Text Generation Inference container of the serving Deployment.

The image's entrypoint is `text-generation-launcher`, which starts one shard per GPU
(`--num-shard`, from serving.tensor_parallel_size) and the router: the TGI API, the
OpenAI-compatible `/v1/chat/completions` and `/v1/completions`, `/health` and
`/metrics` all on one port.
"""

from __future__ import annotations

from framework.targets.kubernetes import pods, vllm

CACHE_DIR = "/cache"  # Hugging Face weights, Triton/torch kernel caches
SHM_SIZE = "8Gi"  # NCCL between the shards
STARTUP_SECONDS = 1800  # weights download, load, warmup (max batch prefill) and CUDA graphs


def ports(recipe) -> list[pods.Port]:
    return [pods.Port("http", recipe.serving.port, "http")]


def max_total_tokens(recipe) -> int:
    return recipe.serving.max_total_tokens or recipe.model.max_model_len


def max_input_length(recipe) -> int:
    """TGI's own default: all but one token of the total budget."""
    return recipe.serving.max_input_length or max_total_tokens(recipe) - 1


def args(recipe) -> list[str]:
    serving, model = recipe.serving, recipe.model
    result = [
        "--model-id", model.source,
        "--num-shard", str(serving.tensor_parallel_size),
        # The legacy spelling of --max-input-tokens, which TGI 3.x still accepts.
        "--max-input-length", str(max_input_length(recipe)),
        "--max-total-tokens", str(max_total_tokens(recipe)),
        "--max-concurrent-requests", str(serving.max_concurrent_requests),
        # Kubernetes sets HOSTNAME (the pod's name), which TGI would take for its bind address.
        "--hostname", "0.0.0.0",
        "--port", str(serving.port),
        "--usage-stats", "off",
    ]
    if model.quantization != "none":
        result += ["--quantize", model.quantization]
    elif model.dtype != "auto":  # TGI refuses --dtype together with --quantize
        result += ["--dtype", model.dtype]
    if model.revision:
        result += ["--revision", model.revision]
    if model.trust_remote_code:
        result.append("--trust-remote-code")
    return result


def env(recipe) -> list[dict]:
    """Writable homes for the caches on the read-only root (the image points HF_HOME at
    /data), hub telemetry off, the hub token."""
    return vllm.with_hub_token(recipe, {
        "HOME": CACHE_DIR,
        "HF_HOME": f"{CACHE_DIR}/huggingface",
        "HUGGINGFACE_HUB_CACHE": f"{CACHE_DIR}/huggingface/hub",
        "TRITON_CACHE_DIR": f"{CACHE_DIR}/triton",
        "TORCHINDUCTOR_CACHE_DIR": f"{CACHE_DIR}/torchinductor",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "DO_NOT_TRACK": "1",
    })


def server(recipe) -> pods.ServerPod:
    # The shards' unix sockets live in /tmp, which gpu_server mounts writable.
    return vllm.gpu_server(recipe, "tgi", args(recipe), env(recipe), ports(recipe), CACHE_DIR, SHM_SIZE, STARTUP_SECONDS)
