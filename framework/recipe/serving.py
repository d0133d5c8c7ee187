"""`serving`: how the model answers requests; `backend` selects Triton or Ray Serve (tabular),
vLLM, SGLang, Ray Serve LLM or TGI (LLMs; TGI deprecated: archived upstream).

Besides its keys, each variant carries, as class variables (no keys of the recipe, nor of
its schema), what the cross-field rules (framework/recipe/checks/) ask of its server: the
quantizations it loads, the ports it keeps, the formats and dtypes it serves."""


from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated, ClassVar, Literal, Union, get_args

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from framework.recipe.base import Section
from framework.recipe.model import DTYPES
from framework.recipe.types import ImageRef, Name, PositiveInt, Quantity

Format = Literal["onnx", "torchscript"]
FORMATS: tuple[str, ...] = get_args(Format)


class Resources(Section):
    """Backend-neutral resources of one serving replica; each target translates them."""

    cpu: Quantity = Field(default="1", description="CPU request and limit (K8s quantity).")
    memory: Quantity = Field(default="2Gi", description="Memory request and limit (K8s quantity).")
    gpu: Annotated[int, Field(ge=0, le=16)] = Field(default=0, description="GPUs per replica.")
    gpu_type: str | None = Field(
        default=None, description="Accelerator type of the GPUs (e.g. nvidia-l4); selects nodes."
    )


class Replicas(Section):
    min: Annotated[int, Field(ge=0, le=1000)] = Field(default=1, description="Fewest replicas.")
    max: Annotated[int, Field(ge=1, le=1000)] = Field(default=3, description="Most replicas.")
    target_utilization: Annotated[int, Field(ge=1, le=100)] = Field(
        default=70, description="Autoscaling target: CPU utilisation (%) or ongoing requests per replica."
    )


class DynamicBatching(Section):
    preferred_batch_sizes: list[PositiveInt] = Field(
        default_factory=list, description="Batch sizes the batcher tries to form."
    )
    max_queue_delay_us: Annotated[int, Field(ge=0, le=10_000_000)] = Field(
        default=500, description="Longest a request waits for a batch to fill, in microseconds."
    )


class Instances(Section):
    count: Annotated[int, Field(ge=1, le=64)] = Field(default=1, description="Model instances per replica.")
    kind: Literal["cpu", "gpu"] = Field(default="cpu", description="Where instances run.")


class VersionPolicy(Section):
    latest: PositiveInt | None = Field(default=1, description="Serve the N newest versions.")
    specific: list[PositiveInt] | None = Field(
        default=None, description="Serve exactly these versions (instead of the newest ones)."
    )

    @model_validator(mode="after")
    def _one_policy(self):
        if self.specific is not None and self.latest is not None and "latest" in self.model_fields_set:
            raise PydanticCustomError("version_policy", "set latest or specific, not both")
        return self


class _Serving(Section):
    server_name: ClassVar[str]
    """The server, as messages name it."""
    quantizations: ClassVar[frozenset[str]] = frozenset({"none"})
    """The values of model.quantization the server loads."""
    reserved_ports: ClassVar[Mapping[int, str]] = MappingProxyType({})
    """Ports the server opens besides `port`, with what each serves."""
    deprecation: ClassVar[str] = ""
    """Why the backend is deprecated and what to use instead (a warning, not an error)."""

    replicas: Replicas = Field(default_factory=Replicas, description="Replica count and autoscaling.")
    resources: Resources = Field(default_factory=Resources, description="Resources of one replica.")
    port: Annotated[int, Field(ge=1024, le=65535)] = Field(default=8000, description="HTTP port of the server.")

    @classmethod
    def backend_name(cls) -> str:
        """The value of `backend` that selects this variant."""
        return get_args(cls.model_fields["backend"].annotation)[0]


class _TabularServing(_Serving):
    formats: ClassVar[tuple[str, ...]] = FORMATS
    """The values of `format` the server loads."""

    format: Format = Field(default="onnx", description="Exported model format.")
    max_batch_size: Annotated[int, Field(ge=0, le=65536)] = Field(
        default=8, description="Largest batch the server forms (0 disables batching)."
    )
    dynamic_batching: DynamicBatching | None = Field(
        default_factory=DynamicBatching, description="Server-side batching of single requests."
    )
    instances: Instances = Field(default_factory=Instances, description="Model instances per replica.")
    model_name: Name | None = Field(
        default=None, description="Name of the model in the model repository; default the recipe name."
    )


class TritonServing(_TabularServing):
    server_name: ClassVar[str] = "Triton"
    reserved_ports: ClassVar[Mapping[int, str]] = MappingProxyType({8001: "gRPC", 8002: "metrics"})

    backend: Literal["triton"] = Field(description="NVIDIA Triton Inference Server.")
    image: ImageRef = Field(
        default="nvcr.io/nvidia/tritonserver:25.10-py3", description="Triton server image."
    )
    model_repository: str | None = Field(
        default=None,
        description="Triton model repository URI (s3://, gs://, as://) on clusters; none fetches the "
        "registered model from MLflow into the pod at start.",
    )
    version_policy: VersionPolicy = Field(default_factory=VersionPolicy, description="Model versions served.")
    warmup: bool = Field(default=True, description="Send a warmup request before reporting ready.")


class RayServeServing(_TabularServing):
    server_name: ClassVar[str] = "Ray Serve"
    formats: ClassVar[tuple[str, ...]] = ("onnx",)

    backend: Literal["ray_serve"] = Field(description="Ray Serve (RayService on clusters).")
    image: ImageRef = Field(default="rayproject/ray:2.60.0-py311-cpu", description="Ray image of the cluster.")
    max_ongoing_requests: Annotated[int, Field(ge=1, le=100000)] = Field(
        default=64, description="Requests a replica accepts at once; must exceed the batch size."
    )


class _LlmServing(_Serving):
    """What every LLM server shares: GPUs per replica and tensor parallelism over them."""

    dtypes: ClassVar[tuple[str, ...]] = DTYPES
    """The values of model.dtype the server computes in."""
    unsharded_quantizations: ClassVar[frozenset[str]] = frozenset()
    """Quantizations the server cannot split over tensor_parallel_size > 1."""
    vllm_plugins: ClassVar[Mapping[str, str]] = MappingProxyType({})
    """Quantizations that vLLM loads only with a plugin, with the plugin (servers running vLLM)."""
    plugin_free_images: ClassVar[tuple[str, ...]] = ()
    """Repositories of images known to carry none of `vllm_plugins`."""
    gguf_from_hub: ClassVar[bool] = True
    """Whether a GGUF model.source may be `<hub repo>:<quant type>` (else a local .gguf file)."""

    resources: Resources = Field(
        default_factory=lambda: Resources(cpu="4", memory="24Gi", gpu=1),
        description="Resources of one replica; GPUs must cover tensor_parallel_size.",
    )
    tensor_parallel_size: Annotated[int, Field(ge=1, le=16)] = Field(default=1, description="GPUs one model is split over.")

    @property
    def context_limit(self) -> tuple[str, int | None]:
        """The key that caps prompt + output of a request, and its value (None: model.max_model_len)."""
        raise NotImplementedError


# vLLM builds in awq, gptq and fp8 (and more the recipe does not offer); bitsandbytes and
# gguf left its tree for plugins (vllm-bnb-plugin, vllm-gguf-plugin) before 0.29. The
# images of the vLLM project and Ray carry vLLM without any plugin.
# tests/targets/test_llm_servers.py checks these against the pinned vLLM's source.
_VLLM_PLUGINS: Mapping[str, str] = MappingProxyType({"bitsandbytes": "vllm-bnb-plugin", "gguf": "vllm-gguf-plugin"})
_PLUGIN_FREE_VLLM_IMAGES = ("vllm/vllm-openai", "rayproject/ray-llm")


class VllmServing(_LlmServing):
    server_name: ClassVar[str] = "vLLM"
    quantizations: ClassVar[frozenset[str]] = frozenset({"none", "awq", "gptq", "fp8", "bitsandbytes", "gguf"})
    vllm_plugins: ClassVar[Mapping[str, str]] = _VLLM_PLUGINS
    plugin_free_images: ClassVar[tuple[str, ...]] = _PLUGIN_FREE_VLLM_IMAGES

    backend: Literal["vllm"] = Field(description="vLLM OpenAI-compatible server.")
    image: ImageRef = Field(default="vllm/vllm-openai:v0.33.0", description="vLLM server image.")
    gpu_memory_utilization: Annotated[float, Field(gt=0.0, le=1.0)] = Field(
        default=0.9, description="Share of GPU memory vLLM may use."
    )
    max_model_len: PositiveInt | None = Field(
        default=None, description="Longest context served; at most model.max_model_len (default that)."
    )
    served_model_name: Name | None = Field(default=None, description="Model name clients ask for; default the recipe name.")
    max_num_seqs: Annotated[int, Field(ge=1, le=4096)] = Field(default=128, description="Sequences batched at once.")

    @property
    def context_limit(self) -> tuple[str, int | None]:
        return "max_model_len", self.max_model_len


# SGLang's image of the pinned release (the `sglang` extra of pyproject.toml): CUDA 12.9,
# x86-64, the runtime variant (no build tools). tests/targets/test_llm_servers.py checks
# the flags, quantizations and dtypes against that release's source.
SGLANG_IMAGE = "lmsysorg/sglang:v0.5.9-cu129-amd64-runtime"


class SglangServing(_LlmServing):
    # SGLang's --quantization choices (QUANTIZATION_CHOICES, server_args.py) the recipe
    # offers; GGUF weights load from a local .gguf file only (check_gguf_file).
    server_name: ClassVar[str] = "SGLang"
    quantizations: ClassVar[frozenset[str]] = frozenset({"none", "awq", "gptq", "fp8", "bitsandbytes", "gguf", "marlin"})
    gguf_from_hub: ClassVar[bool] = False

    backend: Literal["sglang"] = Field(description="SGLang OpenAI-compatible server (`python -m sglang.launch_server`).")
    image: ImageRef = Field(default=SGLANG_IMAGE, description="SGLang server image.")
    mem_fraction_static: Annotated[float, Field(gt=0.0, le=1.0)] = Field(
        default=0.85, description="Share of GPU memory SGLang allocates up front (weights and KV cache pool)."
    )
    context_length: PositiveInt | None = Field(
        default=None, description="Longest context served; at most model.max_model_len (default that)."
    )
    served_model_name: Name | None = Field(default=None, description="Model name clients ask for; default the recipe name.")
    max_running_requests: Annotated[int, Field(ge=1, le=4096)] = Field(
        default=128, description="Requests decoded at once; more wait in SGLang's queue."
    )

    @property
    def context_limit(self) -> tuple[str, int | None]:
        return "context_length", self.context_length


class RayServeLlmServing(_LlmServing):
    # Ray Serve LLM runs the vLLM that Ray pins, and downloads model.source as a Hub repo,
    # which a single GGUF file is not.
    server_name: ClassVar[str] = "Ray Serve LLM"
    quantizations: ClassVar[frozenset[str]] = frozenset({"none", "awq", "gptq", "fp8", "bitsandbytes"})
    vllm_plugins: ClassVar[Mapping[str, str]] = _VLLM_PLUGINS
    plugin_free_images: ClassVar[tuple[str, ...]] = _PLUGIN_FREE_VLLM_IMAGES

    backend: Literal["ray_serve_llm"] = Field(
        description="Ray Serve LLM (`ray.serve.llm:build_openai_app`, vLLM inside) in a RayService."
    )
    image: ImageRef = Field(
        default="rayproject/ray-llm:2.60.0-py311-cu128",
        description="Ray image with Ray Serve LLM and the vLLM that Ray pins (ray[llm]).",
    )
    gpu_memory_utilization: Annotated[float, Field(gt=0.0, le=1.0)] = Field(
        default=0.9, description="Share of GPU memory vLLM may use."
    )
    max_model_len: PositiveInt | None = Field(
        default=None, description="Longest context served; at most model.max_model_len (default that)."
    )
    served_model_name: Name | None = Field(default=None, description="Model id clients ask for; default the recipe name.")
    max_num_seqs: Annotated[int, Field(ge=1, le=4096)] = Field(default=128, description="Sequences batched at once.")
    max_ongoing_requests: Annotated[int, Field(ge=1, le=100000)] = Field(
        default=128, description="Requests a replica accepts at once (Ray Serve); autoscaling targets a share of it."
    )

    @property
    def context_limit(self) -> tuple[str, int | None]:
        return "max_model_len", self.max_model_len


class TgiServing(_LlmServing):
    # TGI's --quantize values and --dtype (auto: the weights' own); exl2 weights load on one GPU.
    # Deprecated, not removed: the server still deploys, with a warning.
    server_name: ClassVar[str] = "TGI"
    deprecation: ClassVar[str] = (
        "Text Generation Inference was archived upstream in March 2026 (huggingface/text-generation-inference is "
        "read-only: no fixes, no new models); use serving.backend sglang or vllm"
    )
    quantizations: ClassVar[frozenset[str]] = frozenset({
        "none", "awq", "gptq", "fp8", "bitsandbytes", "bitsandbytes-nf4", "bitsandbytes-fp4", "eetq", "exl2", "marlin",
    })
    dtypes: ClassVar[tuple[str, ...]] = ("auto", "float16", "bfloat16")
    unsharded_quantizations: ClassVar[frozenset[str]] = frozenset({"exl2"})

    backend: Literal["tgi"] = Field(
        description="Hugging Face Text Generation Inference (OpenAI-compatible /v1). Deprecated: archived upstream in "
        "March 2026; use sglang or vllm."
    )
    image: ImageRef = Field(
        default="ghcr.io/huggingface/text-generation-inference:3.3.5", description="TGI server image."
    )
    max_total_tokens: PositiveInt | None = Field(
        default=None, description="Longest prompt + output per request in tokens; at most model.max_model_len (default that)."
    )
    max_input_length: PositiveInt | None = Field(
        default=None, description="Longest prompt in tokens; below max_total_tokens (default max_total_tokens - 1)."
    )
    max_concurrent_requests: Annotated[int, Field(ge=1, le=100000)] = Field(
        default=128, description="Requests a replica accepts at once; more are refused (429)."
    )

    @property
    def context_limit(self) -> tuple[str, int | None]:
        return "max_total_tokens", self.max_total_tokens


TABULAR_SERVING = (TritonServing, RayServeServing)
LLM_SERVING = (VllmServing, SglangServing, TgiServing, RayServeLlmServing)
SERVING_VARIANTS = TABULAR_SERVING + LLM_SERVING

Serving = Annotated[
    Union[TritonServing, RayServeServing, VllmServing, SglangServing, TgiServing, RayServeLlmServing],
    Field(discriminator="backend"),
]
