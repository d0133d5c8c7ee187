"""LLM servers: connects generate (the vLLM and SGLang Deployments' container arguments,
framework/targets/kubernetes/vllm.py and sglang.py, and Ray Serve LLM's model id,
targets/ray.py) and the runtime (runtime/rag/local.py runs the same vLLM or SGLang
command line on this machine's GPU; the RAG service asks the generation server for the
served model name).
"""

from __future__ import annotations


def served_model_name(recipe) -> str:
    """The model name clients ask an LLM server for (OpenAI's `model`)."""
    return getattr(recipe.serving, "served_model_name", None) or recipe.name


def vllm_args(recipe) -> list[str]:
    """The vLLM OpenAI server's arguments (`vllm serve`-compatible; the image's entrypoint)."""
    serving, model = recipe.serving, recipe.model
    result = [
        "--model", model.source,
        "--tensor-parallel-size", str(serving.tensor_parallel_size),
        "--gpu-memory-utilization", str(serving.gpu_memory_utilization),
        "--max-model-len", str(serving.max_model_len or model.max_model_len),
        "--served-model-name", served_model_name(recipe),
        "--port", str(serving.port),
        "--dtype", model.dtype,
        "--max-num-seqs", str(serving.max_num_seqs),
    ]
    if model.quantization != "none":
        result += ["--quantization", model.quantization]
    if model.revision:
        result += ["--revision", model.revision]
    if model.trust_remote_code:
        result.append("--trust-remote-code")
    return result


# What a local `apply`/`serve` runs: `python -m vllm.entrypoints.cli.main serve ...` is the image's
# `vllm serve` entrypoint (the console script's module; openai.api_server is deprecated in 0.33).
VLLM_MODULE = "vllm.entrypoints.cli.main"
SGLANG_MODULE = "sglang.launch_server"  # `python -m sglang.launch_server`: the server's entry point
# Quantizations SGLang reads through a load format of the same name (its loader picks the
# bitsandbytes and GGUF readers by --load-format).
SGLANG_LOAD_FORMATS = ("bitsandbytes", "gguf")


def sglang_args(recipe) -> list[str]:
    """SGLang's server arguments (`python -m sglang.launch_server ...`), metrics on."""
    serving, model = recipe.serving, recipe.model
    result = [
        "--model-path", model.source,
        "--tp-size", str(serving.tensor_parallel_size),
        "--mem-fraction-static", str(serving.mem_fraction_static),
        "--context-length", str(serving.context_length or model.max_model_len),
        "--served-model-name", served_model_name(recipe),
        "--host", "0.0.0.0",
        "--port", str(serving.port),
        "--dtype", model.dtype,
        "--max-running-requests", str(serving.max_running_requests),
        "--enable-metrics",
    ]
    if model.quantization != "none":
        result += ["--quantization", model.quantization]
    if model.quantization in SGLANG_LOAD_FORMATS:
        result += ["--load-format", model.quantization]
    if model.revision:
        result += ["--revision", model.revision]
    if model.trust_remote_code:
        result.append("--trust-remote-code")
    return result


__all__ = ["SGLANG_MODULE", "served_model_name", "sglang_args", "vllm_args"]
