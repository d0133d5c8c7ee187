"""Triton's model configuration of a tabular recipe, typed: connects generate (which writes
`triton/<model>/config.pbtxt`, framework/targets/triton.py) and serving (the runtime's
serving app, `mlops serve`, the rollouts and Ray Serve replicas serve with it; training,
fetch_model and the rollout write it into the model repositories they fill).

`model_config(recipe)` decides every value once and returns a `ModelConfig`, whose
classes mirror the messages and field names of Triton's model_config.proto
(vendor/triton/model_config.proto) that we set; `render(config, header)` lays it out as
protobuf text format through the Jinja2 template framework/templates/config.pbtxt.j2
(sandboxed and StrictUndefined, as copier does, so a typo in the template raises
instead of rendering an empty field Triton would silently default). The runtime serves
with the object and never reads a config.pbtxt back.

Also named here: the model's name in the repository and its file name per format.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Literal

from framework.contracts.resolved import header as file_header
from framework.signature import model_signature

CONFIG_FILE = "config.pbtxt"
TEMPLATE = "config.pbtxt.j2"

PLATFORMS = {"onnx": "onnxruntime_onnx", "torchscript": "pytorch_libtorch"}  # serving.format -> platform
# Triton's default file name per platform; written explicitly so the config says what
# `apply` must put in each version directory.
MODEL_FILES = {"onnx": "model.onnx", "torchscript": "model.pt"}  # serving.format -> file in a version folder
INSTANCE_KINDS = {"cpu": "KIND_CPU", "gpu": "KIND_GPU"}
DATA_TYPES = {"FP32": "TYPE_FP32", "BYTES": "TYPE_STRING"}  # KServe v2 datatype -> Triton's DataType enum
WARMUP_NAME = "zero_data_batch_1"
REGISTRY_VERSIONS = 2  # a recipe without a version policy (ray_serve) serves the champion and the candidate


# --- ModelConfig, as model_config.proto names it -------------------------------------------
@dataclass(frozen=True)
class ModelTensor:
    """ModelInput / ModelOutput: `dims` without the batch dimension when batching."""

    name: str
    data_type: str  # TYPE_FP32, TYPE_STRING, ...
    dims: tuple[int, ...]

    @functools.cached_property
    def datatype(self) -> str:
        """The KServe v2 datatype clients see (Triton's TYPE_STRING is BYTES)."""
        kind = self.data_type.removeprefix("TYPE_")
        return "BYTES" if kind == "STRING" else kind


@dataclass(frozen=True)
class DynamicBatching:
    """ModelDynamicBatching."""

    preferred_batch_size: tuple[int, ...] = ()
    max_queue_delay_microseconds: int = 0


@dataclass(frozen=True)
class InstanceGroup:
    """ModelInstanceGroup."""

    count: int = 1
    kind: str = "KIND_CPU"


@dataclass(frozen=True)
class VersionPolicy:
    """ModelVersionPolicy: its `policy_choice` oneof, `latest { num_versions }`, `all {}`
    or `specific { versions }`."""

    choice: Literal["latest", "all", "specific"] = "latest"
    num_versions: int = 1  # latest
    versions: tuple[int, ...] = ()  # specific


@dataclass(frozen=True)
class WarmupInput:
    """ModelWarmup.Input (zero data only)."""

    data_type: str
    dims: tuple[int, ...]
    zero_data: bool = True


@dataclass(frozen=True)
class ModelWarmup:
    """ModelWarmup: `inputs` is the proto's map, as (key, value) pairs in input order."""

    name: str
    batch_size: int
    inputs: tuple[tuple[str, WarmupInput], ...]


@dataclass(frozen=True)
class ModelConfig:
    """ModelConfig: the fields we set."""

    name: str
    platform: str
    max_batch_size: int
    input: tuple[ModelTensor, ...]
    output: tuple[ModelTensor, ...]
    default_model_filename: str
    dynamic_batching: DynamicBatching | None = None
    instance_group: tuple[InstanceGroup, ...] = (InstanceGroup(),)
    version_policy: VersionPolicy = VersionPolicy()
    model_warmup: tuple[ModelWarmup, ...] = ()

    @property
    def batching(self) -> bool:
        return self.max_batch_size > 0

    def full_shape(self, tensor: ModelTensor) -> list[int]:
        """The shape clients see: [-1, *dims] with batching, else dims."""
        return [-1, *tensor.dims] if self.batching else list(tensor.dims)

    @property
    def instance_count(self) -> int:
        return sum(group.count for group in self.instance_group) or 1

    def serving_versions(self, versions: Iterable[int | str] | None) -> ModelConfig:
        """This config serving exactly `versions` (version_policy specific); None: unchanged."""
        if versions is None:
            return self
        return replace(self, version_policy=VersionPolicy("specific", versions=tuple(sorted({int(v) for v in versions}))))


# --- the builder ---------------------------------------------------------------------------
def model_name(recipe) -> str:
    """The model's directory and name in the Triton model repository (and the serving app's
    /v2/models/<name>)."""
    return recipe.serving.model_name or recipe.name


def model_file(recipe) -> str:
    """The model file of each version folder (and of the registered version's artifacts)."""
    return MODEL_FILES[recipe.serving.format]


def model_config(recipe, versions: Iterable[int | str] | None = None) -> ModelConfig:
    """The configuration a tabular recipe's model is served with. `versions`: serve exactly
    these (a rollout's repository); else the recipe's version_policy (Triton), or the
    newest two (ray_serve: the registry's champion and candidate)."""
    serving = recipe.serving
    signature = model_signature(recipe)
    batching = serving.max_batch_size > 0

    def tensors(specs) -> tuple[ModelTensor, ...]:
        # With batching Triton adds the batch dimension itself; without, dims are the full shape.
        return tuple(ModelTensor(t.name, DATA_TYPES[t.dtype], (t.width,) if batching else tuple(t.shape)) for t in specs)

    inputs = tensors(signature.inputs)
    dynamic = serving.dynamic_batching if batching else None  # Triton refuses it without batching
    warmup = ()
    if getattr(serving, "warmup", False):
        # A concrete shape: batch_size 1 makes Triton add the batch dim when batching.
        dims = (1,) if batching else (1, 1)  # every input is one column
        warmup = (ModelWarmup(WARMUP_NAME, 1, tuple((t.name, WarmupInput(t.data_type, dims)) for t in inputs)),)
    config = ModelConfig(
        name=model_name(recipe),
        platform=PLATFORMS[serving.format],
        max_batch_size=serving.max_batch_size,
        input=inputs,
        output=tensors(signature.outputs),
        default_model_filename=model_file(recipe),
        dynamic_batching=None if dynamic is None else DynamicBatching(
            tuple(sorted(set(dynamic.preferred_batch_sizes))), dynamic.max_queue_delay_us
        ),
        instance_group=(InstanceGroup(serving.instances.count, INSTANCE_KINDS[serving.instances.kind]),),
        version_policy=_version_policy(getattr(serving, "version_policy", None)),
        model_warmup=warmup,
    )
    return config.serving_versions(versions)


def _version_policy(policy) -> VersionPolicy:
    if policy is None:
        return VersionPolicy("latest", num_versions=REGISTRY_VERSIONS)
    # `latest` has a default (1), so a recipe naming `specific` versions means those;
    # neither serves all versions.
    if policy.specific:
        return VersionPolicy("specific", versions=tuple(sorted(set(policy.specific))))
    if policy.latest:
        return VersionPolicy("latest", num_versions=policy.latest)
    return VersionPolicy("all")


# --- config.pbtxt ------------------------------------------------------------------------
# protobuf's CEscape: these get a short escape, other bytes outside printable ASCII octal.
_ESCAPES = {ord("\\"): "\\\\", ord('"'): '\\"', ord("'"): "\\'", ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"}


def pb_string(value: str) -> str:
    """A protobuf text-format string literal: quoted, escaped byte by byte as UTF-8."""
    from jinja2 import Undefined

    if isinstance(value, Undefined):
        str(value)  # StrictUndefined raises its UndefinedError here, naming the variable
    if not isinstance(value, str):
        raise TypeError(f"pbstr expects a string, got {type(value).__name__}")
    out = []
    for byte in value.encode("utf-8"):
        if byte in _ESCAPES:
            out.append(_ESCAPES[byte])
        elif 0x20 <= byte < 0x7F:
            out.append(chr(byte))
        else:
            out.append(f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


@functools.cache
def environment():
    """The template's Jinja2 environment (imported on first use: serving needs none)."""
    from jinja2 import PackageLoader, StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment(
        loader=PackageLoader("framework", "templates"),
        undefined=StrictUndefined,
        autoescape=False,  # protobuf text, not HTML: strings are escaped by `pbstr`
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pbstr"] = pb_string
    return env


def render(config: ModelConfig, header: str) -> str:
    """config.pbtxt's text: `header` (comment lines), then the config."""
    return environment().get_template(TEMPLATE).render(header=header, config=config)


def config_text(recipe, versions: Iterable[int | str] | None = None) -> str:
    """The config.pbtxt of a recipe, as `mlops generate` writes it (`versions`: see model_config)."""
    return render(model_config(recipe, versions), file_header(recipe))


def config_path(recipe) -> str:
    """config.pbtxt's path in a model repository (and under generated/<recipe>/<env>/triton/)."""
    return f"{model_name(recipe)}/{CONFIG_FILE}"


__all__ = [
    "ModelConfig", "ModelTensor", "DynamicBatching", "InstanceGroup", "VersionPolicy", "ModelWarmup", "WarmupInput",
    "model_config", "model_name", "model_file", "render", "config_text", "config_path", "pb_string", "environment",
    "CONFIG_FILE", "TEMPLATE", "PLATFORMS", "MODEL_FILES", "INSTANCE_KINDS", "DATA_TYPES", "WARMUP_NAME",
    "REGISTRY_VERSIONS",
]
