"""Rules mainly about `serving`: whether the backend serves the model (its kind, its
quantization, the vLLM plugin a quantization needs, its dtype, its sharding), whether it
is still maintained (a warning), and how the
server's own keys fit together (batching, GPUs, context lengths, replicas, ports,
formats). What differs per backend is no table here: each rule asks the serving variant
(framework/recipe/serving.py) for its `quantizations`, `vllm_plugins`, `dtypes`,
`reserved_ports`, `formats` and the like.
"""

from __future__ import annotations

from collections.abc import Iterator

from framework.recipe.checks.base import WARNING, Violation, check
from framework.recipe.model import LlmModel
from framework.recipe.recipe import Recipe
from framework.recipe.serving import (
    LLM_SERVING, SERVING_VARIANTS, TABULAR_SERVING, RayServeServing, SglangServing, TgiServing, VllmServing,
)

# What each backend loads, and the plugins vLLM needs, as tables by backend name: read by
# tests/targets/test_llm_servers.py, which checks them against the pinned vLLM's source.
QUANTIZATION_BY_BACKEND = {variant.backend_name(): variant.quantizations for variant in SERVING_VARIANTS}
VLLM_PLUGIN_QUANTIZATIONS = VllmServing.vllm_plugins  # Ray Serve LLM's vLLM takes the same


def _quantization(r: Recipe) -> str:
    """model.quantization; a tabular model has none."""
    return r.model.quantization if isinstance(r.model, LlmModel) else "none"


@check
def backend_matches_model_kind(r: Recipe) -> Iterator[Violation]:
    backend = r.serving.backend
    if isinstance(r.serving, LLM_SERVING) and r.model.kind != "llm":
        yield Violation(("serving.backend", "model.kind"), f"serving.backend {backend} needs model.kind llm, not {r.model.kind}")
    if isinstance(r.serving, TABULAR_SERVING) and r.model.kind != "tabular":
        yield Violation(
            ("serving.backend", "model.kind"),
            f"serving.backend {backend} serves exported tabular models: use vllm, sglang or ray_serve_llm for model.kind llm",
        )


@check
def backend_is_maintained(r: Recipe) -> Iterator[Violation]:
    """A deprecated backend still validates and generates, with one warning (an error
    under `--strict`)."""
    if r.serving.deprecation:
        yield Violation(
            ("serving.backend",),
            f"serving.backend {r.serving.backend} is deprecated: {r.serving.deprecation}",
            WARNING,
        )


@check
def quantization_fits_backend(r: Recipe) -> Iterator[Violation]:
    quantization = _quantization(r)
    allowed = r.serving.quantizations
    if quantization not in allowed:
        yield Violation(
            ("model.quantization", "serving.backend"),
            f"model.quantization {quantization} is not supported by serving.backend {r.serving.backend}; "
            f"supported: {', '.join(sorted(allowed))}",
        )


def image_repository(image: str) -> str:
    """'docker.io/vllm/vllm-openai:v0.33.0' -> 'vllm/vllm-openai' (tag, digest and Docker Hub's host dropped)."""
    name = image.split("@", 1)[0]
    head, _, last = name.rpartition("/")
    name = f"{head}/{last.split(':', 1)[0]}" if head else last.split(":", 1)[0]
    for prefix in ("docker.io/library/", "docker.io/", "index.docker.io/"):
        name = name.removeprefix(prefix)
    return name


@check
def quantization_plugin_in_image(r: Recipe) -> Iterator[Violation]:
    quantization = _quantization(r)
    if not isinstance(r.serving, LLM_SERVING):
        return
    plugin = r.serving.vllm_plugins.get(quantization)
    if plugin is None:
        return
    if image_repository(r.serving.image) in r.serving.plugin_free_images:
        instead = ", or serving.backend sglang" if quantization in SglangServing.quantizations else ""
        yield Violation(
            ("model.quantization", "serving.image"),
            f"model.quantization {quantization} needs vLLM's {plugin} (out of vLLM's tree since 0.29), which "
            f"serving.image {r.serving.image} does not contain: use an image with {plugin} installed{instead}",
        )


@check
def batch_sizes_fit(r: Recipe) -> Iterator[Violation]:
    serving = r.serving
    if not isinstance(serving, TABULAR_SERVING):
        return
    batching = serving.dynamic_batching
    if batching is None or not batching.preferred_batch_sizes or serving.max_batch_size == 0:
        return  # without batches, batching_needs_batches says what is wrong
    largest = max(batching.preferred_batch_sizes)
    if serving.max_batch_size < largest:
        yield Violation(
            ("serving.max_batch_size", "serving.dynamic_batching.preferred_batch_sizes"),
            f"serving.max_batch_size ({serving.max_batch_size}) must be >= the largest of "
            f"serving.dynamic_batching.preferred_batch_sizes ({largest})",
        )


@check
def batching_needs_batches(r: Recipe) -> Iterator[Violation]:
    serving = r.serving
    if isinstance(serving, TABULAR_SERVING) and serving.dynamic_batching is not None and serving.max_batch_size == 0:
        yield Violation(
            ("serving.dynamic_batching", "serving.max_batch_size"),
            "serving.dynamic_batching needs serving.max_batch_size > 0; set serving.dynamic_batching "
            "to null to serve without batching",
        )


@check
def gpu_instances_need_gpus(r: Recipe) -> Iterator[Violation]:
    serving = r.serving
    if isinstance(serving, TABULAR_SERVING) and serving.instances.kind == "gpu" and serving.resources.gpu < 1:
        yield Violation(
            ("serving.instances.kind", "serving.resources.gpu"),
            "serving.instances.kind gpu needs serving.resources.gpu >= 1",
        )
    if r.training is not None and r.training.gpu_type and r.training.gpus_per_worker == 0:
        yield Violation(
            ("training.gpu_type", "training.gpus_per_worker"),
            f"training.gpu_type {r.training.gpu_type} is set but training.gpus_per_worker is 0",
        )


@check
def tensor_parallel_fits_gpus(r: Recipe) -> Iterator[Violation]:
    serving = r.serving
    if isinstance(serving, LLM_SERVING) and serving.tensor_parallel_size > serving.resources.gpu:
        yield Violation(
            ("serving.tensor_parallel_size", "serving.resources.gpu"),
            f"serving.tensor_parallel_size ({serving.tensor_parallel_size}) must be <= serving.resources.gpu "
            f"({serving.resources.gpu}), the GPUs of a replica",
        )


@check
def exl2_is_not_sharded(r: Recipe) -> Iterator[Violation]:
    serving, quantization = r.serving, _quantization(r)
    if not isinstance(serving, LLM_SERVING) or quantization not in serving.unsharded_quantizations:
        return
    tp = serving.tensor_parallel_size
    if tp > 1:
        yield Violation(
            ("model.quantization", "serving.tensor_parallel_size"),
            f"model.quantization {quantization} cannot be sharded by {serving.server_name}: "
            f"serving.tensor_parallel_size must be 1, not {tp}",
        )


@check
def dtype_fits_backend(r: Recipe) -> Iterator[Violation]:
    serving = r.serving
    if not isinstance(r.model, LlmModel) or not isinstance(serving, LLM_SERVING):
        return
    dtype = r.model.dtype
    if dtype not in serving.dtypes:
        yield Violation(
            ("model.dtype", "serving.backend"),
            f"model.dtype {dtype} is not served by serving.backend {serving.backend}: use {', '.join(serving.dtypes)}",
        )


@check
def served_context_fits_model(r: Recipe) -> Iterator[Violation]:
    if not isinstance(r.model, LlmModel) or not isinstance(r.serving, LLM_SERVING):
        return
    key, served = r.serving.context_limit
    if served is not None and served > r.model.max_model_len:
        yield Violation(
            (f"serving.{key}", "model.max_model_len"),
            f"serving.{key} ({served}) must be <= model.max_model_len ({r.model.max_model_len})",
        )


@check
def prompt_leaves_room_to_answer(r: Recipe) -> Iterator[Violation]:
    serving = r.serving
    if not isinstance(serving, TgiServing) or serving.max_input_length is None or not isinstance(r.model, LlmModel):
        return
    prompt, total = serving.max_input_length, serving.max_total_tokens
    if total is not None and prompt >= total:
        yield Violation(
            ("serving.max_input_length", "serving.max_total_tokens"),
            f"serving.max_input_length ({prompt}) must be < serving.max_total_tokens ({total}): "
            "the rest is what the model may generate",
        )
    elif total is None and prompt >= r.model.max_model_len:
        yield Violation(
            ("serving.max_input_length", "model.max_model_len"),
            f"serving.max_input_length ({prompt}) must be < model.max_model_len ({r.model.max_model_len}), "
            "the default serving.max_total_tokens",
        )


@check
def replicas_ordered(r: Recipe) -> Iterator[Violation]:
    replicas = r.serving.replicas
    if replicas.min > replicas.max:
        yield Violation(
            ("serving.replicas.min", "serving.replicas.max"),
            f"serving.replicas.min ({replicas.min}) must be <= serving.replicas.max ({replicas.max})",
        )


@check
def ray_serve_accepts_a_batch(r: Recipe) -> Iterator[Violation]:
    serving = r.serving
    if isinstance(serving, RayServeServing) and serving.max_ongoing_requests < serving.max_batch_size:
        yield Violation(
            ("serving.max_ongoing_requests", "serving.max_batch_size"),
            f"serving.max_ongoing_requests ({serving.max_ongoing_requests}) must be >= serving.max_batch_size "
            f"({serving.max_batch_size}), or batches never fill",
        )


@check
def triton_port_is_free(r: Recipe) -> Iterator[Violation]:
    """The server's own other ports (Triton's gRPC and metrics) cannot be its HTTP port."""
    serving = r.serving
    taken_by = serving.reserved_ports.get(serving.port)
    if taken_by is not None:
        yield Violation(
            ("serving.port",),
            f"serving.port {serving.port} is {serving.server_name}'s {taken_by} port: choose another HTTP port",
        )


@check
def torchscript_only_on_triton(r: Recipe) -> Iterator[Violation]:
    """A tabular server loads the formats in its `formats` (TorchScript: Triton's libtorch)."""
    serving = r.serving
    if isinstance(serving, TABULAR_SERVING) and serving.format not in serving.formats:
        able = " or ".join(v.backend_name() for v in TABULAR_SERVING if serving.format in v.formats)
        yield Violation(
            ("serving.format", "serving.backend"),
            f"serving.format {serving.format} needs serving.backend {able}, not {serving.backend}",
        )
