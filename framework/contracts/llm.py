"""LLM servers: connects generate (the vLLM Deployment's container arguments,
framework/targets/kubernetes/vllm.py, and Ray Serve LLM's model id, targets/ray.py) and
the runtime (runtime/rag/local.py runs the same vLLM command line on this machine's GPU;
the RAG service asks the generation server for the served model name).
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


__all__ = ["served_model_name", "vllm_args"]
