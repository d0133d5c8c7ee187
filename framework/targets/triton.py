"""Triton model repository: `triton/<model>/config.pbtxt` for recipes served by Triton.

config.pbtxt is protobuf text format (Triton's ModelConfig), a true text format, so it
is the one artifact rendered from a Jinja2 template. Python decides every value here
and hands the template plain data; the template only lays it out. The environment is
sandboxed and StrictUndefined (as copier does), so a typo in the template raises
instead of rendering an empty field Triton would silently default.
"""

from __future__ import annotations

import functools
from typing import Any

from jinja2 import PackageLoader, StrictUndefined, Undefined
from jinja2.sandbox import SandboxedEnvironment

from framework.signature import model_signature
from framework.targets import Artifact
from framework.targets.common import header

TEMPLATE = "config.pbtxt.j2"

PLATFORMS = {"onnx": "onnxruntime_onnx", "torchscript": "pytorch_libtorch"}
# Triton's default file name per platform; written explicitly so the config says what
# `apply` must put in each version directory.
MODEL_FILES = {"onnx": "model.onnx", "torchscript": "model.pt"}
INSTANCE_KINDS = {"cpu": "KIND_CPU", "gpu": "KIND_GPU"}
TRITON_TYPES = {"FP32": "FP32", "BYTES": "STRING"}  # KServe datatype -> Triton's DataType enum (TYPE_...)
WARMUP_NAME = "zero_data_batch_1"

# protobuf's CEscape: these get a short escape, other bytes outside printable ASCII octal.
_ESCAPES = {ord("\\"): "\\\\", ord('"'): '\\"', ord("'"): "\\'", ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"}


def pb_string(value: str) -> str:
    """A protobuf text-format string literal: quoted, escaped byte by byte as UTF-8."""
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
def environment() -> SandboxedEnvironment:
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


def model_name(recipe) -> str:
    """The model's directory and name in the Triton model repository."""
    return recipe.serving.model_name or recipe.name


def config_context(recipe) -> dict[str, Any]:
    """Everything the template reads, as plain data."""
    serving = recipe.serving
    signature = model_signature(recipe)
    batching = serving.max_batch_size > 0

    def tensors(specs) -> list[dict[str, Any]]:
        # With batching Triton adds the batch dimension itself; without, dims are the full shape.
        return [
            {"name": t.name, "data_type": f"TYPE_{TRITON_TYPES[t.dtype]}", "dims": [t.width] if batching else list(t.shape)}
            for t in specs
        ]

    dynamic = serving.dynamic_batching if batching else None  # Triton refuses it without batching
    policy = serving.version_policy
    # `latest` has a default (1), so a recipe naming `specific` versions means those;
    # neither serves all versions. Both keys always exist, so StrictUndefined catches typos.
    version_policy = {
        "specific": sorted(set(policy.specific)) if policy.specific else None,
        "latest": None if policy.specific else policy.latest,
    }
    warmup = None
    if serving.warmup:
        # A concrete shape: batch_size 1 makes Triton add the batch dim when batching.
        warmup = {
            "name": WARMUP_NAME,
            "batch_size": 1,
            "dims": [1] if batching else [1, 1],  # every input is one column
        }
    return {
        "header": header(recipe),
        "name": model_name(recipe),
        "platform": PLATFORMS[serving.format],
        "default_model_filename": MODEL_FILES[serving.format],
        "max_batch_size": serving.max_batch_size,
        "inputs": tensors(signature.inputs),
        "outputs": tensors(signature.outputs),
        "dynamic_batching": None
        if dynamic is None
        else {
            "preferred_batch_sizes": sorted(set(dynamic.preferred_batch_sizes)),
            "max_queue_delay_us": dynamic.max_queue_delay_us,
        },
        "instance_group": {"count": serving.instances.count, "kind": INSTANCE_KINDS[serving.instances.kind]},
        "version_policy": version_policy,
        "warmup": warmup,
    }


def render(recipe) -> list[Artifact]:
    if recipe.serving.backend != "triton":
        return []
    text = environment().get_template(TEMPLATE).render(config_context(recipe))
    return [Artifact(f"triton/{model_name(recipe)}/config.pbtxt", text)]
