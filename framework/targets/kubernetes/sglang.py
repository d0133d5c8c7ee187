"""The SGLang server container of the serving Deployment.

`python -m sglang.launch_server` (the image's own entrypoint is NVIDIA's wrapper, so the
container names the command) with the arguments of framework/contracts/llm.py: one
tensor-parallel rank per GPU (`--tp-size`), and on one port the OpenAI-compatible
`/v1/chat/completions` and `/v1/completions`, `/health` (503 while starting) and, with
`--enable-metrics`, `/metrics` (`sglang:*`, see targets/metrics_sglang.py).
"""

from __future__ import annotations

from framework.contracts.llm import SGLANG_MODULE, sglang_args
from framework.targets.kubernetes import pods, vllm

CACHE_DIR = "/cache"  # Hugging Face weights, FlashInfer/Triton/torch kernel caches
SHM_SIZE = "8Gi"  # NCCL between tensor-parallel ranks
STARTUP_SECONDS = 1800  # weights download, load, KV pool, CUDA graph capture
COMMAND = ["python3", "-m", SGLANG_MODULE]


def ports(recipe) -> list[pods.Port]:
    return [pods.Port("http", recipe.serving.port, "http")]


def args(recipe) -> list[str]:
    """The server's arguments (framework/contracts/llm.py: local RAG runs the same command)."""
    return sglang_args(recipe)


def env(recipe) -> list[dict]:
    """Writable homes for every cache on the read-only root (~/.cache holds FlashInfer's
    JIT kernels), hub telemetry off, the hub token."""
    return vllm.with_hub_token(recipe, {
        "HOME": CACHE_DIR,
        "XDG_CACHE_HOME": CACHE_DIR,
        "HF_HOME": f"{CACHE_DIR}/huggingface",
        "TRITON_CACHE_DIR": f"{CACHE_DIR}/triton",
        "TORCHINDUCTOR_CACHE_DIR": f"{CACHE_DIR}/torchinductor",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "DO_NOT_TRACK": "1",
    })


def server(recipe) -> pods.ServerPod:
    return vllm.gpu_server(recipe, "sglang", args(recipe), env(recipe), ports(recipe), CACHE_DIR, SHM_SIZE,
                           STARTUP_SECONDS, command=COMMAND)
