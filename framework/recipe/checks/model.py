"""Rules mainly about `model`: the sections a tabular model needs, the one file a GGUF
quantization must name, and which keys each tabular architecture (mlp, linear, lightgbm)
takes and where lightgbm can train and be served. The rules on what a server loads of a
model (quantization, dtype) are serving's, in serving.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from framework.recipe.checks.base import Violation, check
from framework.recipe.model import LlmModel, TabularModel
from framework.recipe.recipe import Recipe
from framework.recipe.serving import TABULAR_SERVING


@check
def tabular_needs_data_and_training(r: Recipe) -> Iterator[Violation]:
    if r.model.kind == "tabular":
        for section, value in (("data", r.data), ("training", r.training)):
            if value is None:
                yield Violation((section, "model.kind"), f"{section} is required when model.kind is tabular")


# vLLM loads GGUF from one file: a local path, or `<hub repo>:<quant type>` (vLLM >= 0.29);
# SGLang from a local .gguf file only (the serving variant's `gguf_from_hub`).
_GGUF_FILE = re.compile(r"\.gguf$")
_GGUF_HUB = re.compile(r"^[\w.-]+/[\w.-]+:[\w.-]+$")


@check
def gguf_names_one_file(r: Recipe) -> Iterator[Violation]:
    if not isinstance(r.model, LlmModel) or r.model.quantization != "gguf" or _GGUF_FILE.search(r.model.source):
        return
    from_hub = getattr(r.serving, "gguf_from_hub", True)
    if from_hub and _GGUF_HUB.search(r.model.source):
        return
    if from_hub:
        yield Violation(
            ("model.quantization", "model.source"),
            f"model.quantization gguf needs model.source to name one GGUF file: a local path ending in .gguf or "
            f"'<hub repo>:<quant type>' (e.g. unsloth/Qwen3-0.6B-GGUF:Q4_K_M), not '{r.model.source}'",
        )
    else:
        yield Violation(
            ("model.quantization", "model.source", "serving.backend"),
            f"model.quantization gguf on serving.backend {r.serving.backend} needs model.source to be a local "
            f"path ending in .gguf (it reads no '<hub repo>:<quant type>'), not '{r.model.source}'",
        )


@check
def boosting_needs_lightgbm(r: Recipe) -> Iterator[Violation]:
    if isinstance(r.model, TabularModel) and r.model.boosting is not None and r.model.architecture != "lightgbm":
        yield Violation(
            ("model.boosting", "model.architecture"),
            f"model.boosting sets LightGBM's trees but model.architecture is {r.model.architecture}: "
            "set model.architecture: lightgbm, or drop model.boosting",
        )


@check
def network_keys_need_hidden_layers(r: Recipe) -> Iterator[Violation]:
    """hidden_sizes, dropout, activation and batch_norm shape hidden layers, which a linear
    model and boosted trees do not have: set, they would change nothing."""
    m = r.model
    if not isinstance(m, TabularModel) or m.architecture not in ("linear", "lightgbm"):
        return
    architecture = m.architecture
    shaping = {
        "hidden_sizes": bool(m.hidden_sizes),
        "dropout": m.dropout > 0,
        "activation": "activation" in m.model_fields_set,
        "batch_norm": m.batch_norm,
    }
    for key, has_effect in shaping.items():
        if key in m.model_fields_set and has_effect:
            yield Violation((f"model.{key}", "model.architecture"),
                            f"model.{key} shapes hidden layers, which model.architecture {architecture} has none of: "
                            f"drop model.{key}, or use architecture mlp")


@check
def lightgbm_trains_where_it_can(r: Recipe) -> Iterator[Violation]:
    """Trees train with Ray Train's LightGBMTrainer on CPUs, export to ONNX only, and have
    no logits for a teacher's soft targets."""
    if not isinstance(r.model, TabularModel) or r.model.architecture != "lightgbm" or r.training is None:
        return
    if r.training.engine != "ray":
        yield Violation(("model.architecture", "training.engine"),
                        "model.architecture lightgbm trains with Ray Train's LightGBMTrainer: set training.engine: ray")
    if r.training.gpus_per_worker > 0:
        yield Violation(("model.architecture", "training.gpus_per_worker"),
                        "model.architecture lightgbm trains on CPUs (the LightGBM wheel has no CUDA): "
                        "set training.gpus_per_worker: 0")
    if isinstance(r.serving, TABULAR_SERVING) and r.serving.format == "torchscript":
        yield Violation(("model.architecture", "serving.format"),
                        "model.architecture lightgbm exports to ONNX (Triton's onnxruntime backend): set serving.format: onnx")
    if r.training.distillation is not None:
        yield Violation(("model.architecture", "training.distillation"),
                        "model.architecture lightgbm cannot be a distillation student (soft targets need a network's "
                        "logits): use architecture mlp or drop training.distillation")
