"""Cross-field rules, checked after the models validated each section on its own.

Each rule is a small registered function yielding `Violation`s; a violation names
every key involved, in its `keys` (the first locates it) and in its message.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from framework.recipe.evaluation import (
    CLASSIFICATION_METRICS, REGRESSION_METRICS, RETRIEVAL_METRICS,
)
from framework.recipe.recipe import Recipe
from framework.recipe.suggest import did_you_mean
from framework.signature import OUTPUTS


@dataclass(frozen=True)
class Violation:
    keys: tuple[str, ...]
    message: str


Check = Callable[[Recipe], Iterator[Violation]]
CHECKS: list[Check] = []


def check(rule: Check) -> Check:
    CHECKS.append(rule)
    return rule


def run_checks(recipe: Recipe) -> list[Violation]:
    return [violation for rule in CHECKS for violation in rule(recipe)]


# --- model and sections ------------------------------------------------------------
@check
def tabular_needs_data_and_training(r: Recipe) -> Iterator[Violation]:
    if r.model.kind == "tabular":
        for section in ("data", "training"):
            if getattr(r, section) is None:
                yield Violation((section, "model.kind"), f"{section} is required when model.kind is tabular")


LLM_BACKENDS = ("vllm", "tgi", "ray_serve_llm")
TABULAR_BACKENDS = ("triton", "ray_serve")
VLLM_BACKENDS = ("vllm", "ray_serve_llm")  # Ray Serve LLM runs vLLM (the release Ray pins)


@check
def backend_matches_model_kind(r: Recipe) -> Iterator[Violation]:
    backend = r.serving.backend
    if backend in LLM_BACKENDS and r.model.kind != "llm":
        yield Violation(("serving.backend", "model.kind"), f"serving.backend {backend} needs model.kind llm, not {r.model.kind}")
    if backend in TABULAR_BACKENDS and r.model.kind != "tabular":
        yield Violation(
            ("serving.backend", "model.kind"),
            f"serving.backend {backend} serves exported tabular models: use vllm, tgi or ray_serve_llm for model.kind llm",
        )


@check
def rag_needs_llm(r: Recipe) -> Iterator[Violation]:
    if r.rag is not None and r.model.kind != "llm":
        yield Violation(("rag", "model.kind"), "a rag section needs model.kind llm")


# Which quantizations each backend loads. vLLM builds in awq, gptq and fp8 (and more the
# recipe does not offer); bitsandbytes and gguf left its tree for plugins (vllm-bnb-plugin,
# vllm-gguf-plugin) before 0.29, see quantization_plugin_in_image. Ray Serve LLM downloads
# model_source as a Hub repo, which a single GGUF file is not. TGI: its --quantize values.
# tests/targets/test_llm_servers.py checks these against the pinned vLLM's source.
QUANTIZATION_BY_BACKEND = {
    "vllm": {"none", "awq", "gptq", "fp8", "bitsandbytes", "gguf"},
    "ray_serve_llm": {"none", "awq", "gptq", "fp8", "bitsandbytes"},
    "tgi": {"none", "awq", "gptq", "fp8", "bitsandbytes", "bitsandbytes-nf4", "bitsandbytes-fp4", "eetq", "exl2", "marlin"},
    "triton": {"none"},
    "ray_serve": {"none"},
}
VLLM_PLUGIN_QUANTIZATIONS = {"bitsandbytes": "vllm-bnb-plugin", "gguf": "vllm-gguf-plugin"}
# Images that carry vLLM without any quantization plugin: the vLLM project's and Ray's.
STOCK_VLLM_IMAGES = ("vllm/vllm-openai", "rayproject/ray-llm")


def image_repository(image: str) -> str:
    """'docker.io/vllm/vllm-openai:v0.33.0' -> 'vllm/vllm-openai' (tag, digest and Docker Hub's host dropped)."""
    name = image.split("@", 1)[0]
    head, _, last = name.rpartition("/")
    name = f"{head}/{last.split(':', 1)[0]}" if head else last.split(":", 1)[0]
    for prefix in ("docker.io/library/", "docker.io/", "index.docker.io/"):
        name = name.removeprefix(prefix)
    return name


@check
def quantization_fits_backend(r: Recipe) -> Iterator[Violation]:
    quantization = getattr(r.model, "quantization", "none")
    allowed = QUANTIZATION_BY_BACKEND[r.serving.backend]
    if quantization not in allowed:
        yield Violation(
            ("model.quantization", "serving.backend"),
            f"model.quantization {quantization} is not supported by serving.backend {r.serving.backend}; "
            f"supported: {', '.join(sorted(allowed))}",
        )


@check
def quantization_plugin_in_image(r: Recipe) -> Iterator[Violation]:
    quantization = getattr(r.model, "quantization", "none")
    plugin = VLLM_PLUGIN_QUANTIZATIONS.get(quantization)
    if plugin is None or r.serving.backend not in VLLM_BACKENDS:
        return
    if image_repository(r.serving.image) in STOCK_VLLM_IMAGES:
        instead = ", or serving.backend tgi" if quantization in QUANTIZATION_BY_BACKEND["tgi"] else ""
        yield Violation(
            ("model.quantization", "serving.image"),
            f"model.quantization {quantization} needs vLLM's {plugin} (out of vLLM's tree since 0.29), which "
            f"serving.image {r.serving.image} does not contain: use an image with {plugin} installed{instead}",
        )


# vLLM loads GGUF from one file: a local path, or `<hub repo>:<quant type>` (vLLM >= 0.29).
_GGUF_SOURCE = re.compile(r"\.gguf$|^[\w.-]+/[\w.-]+:[\w.-]+$")


@check
def gguf_names_one_file(r: Recipe) -> Iterator[Violation]:
    if getattr(r.model, "quantization", "none") == "gguf" and not _GGUF_SOURCE.search(r.model.source):
        yield Violation(
            ("model.quantization", "model.source"),
            f"model.quantization gguf needs model.source to name one GGUF file: a local path ending in .gguf or "
            f"'<hub repo>:<quant type>' (e.g. unsloth/Qwen3-0.6B-GGUF:Q4_K_M), not '{r.model.source}'",
        )


# --- serving -------------------------------------------------------------------------
@check
def batch_sizes_fit(r: Recipe) -> Iterator[Violation]:
    batching = getattr(r.serving, "dynamic_batching", None)
    if batching is None or not batching.preferred_batch_sizes or r.serving.max_batch_size == 0:
        return  # without batches, batching_needs_batches says what is wrong
    largest = max(batching.preferred_batch_sizes)
    if r.serving.max_batch_size < largest:
        yield Violation(
            ("serving.max_batch_size", "serving.dynamic_batching.preferred_batch_sizes"),
            f"serving.max_batch_size ({r.serving.max_batch_size}) must be >= the largest of "
            f"serving.dynamic_batching.preferred_batch_sizes ({largest})",
        )


@check
def batching_needs_batches(r: Recipe) -> Iterator[Violation]:
    if getattr(r.serving, "dynamic_batching", None) is not None and r.serving.max_batch_size == 0:
        yield Violation(
            ("serving.dynamic_batching", "serving.max_batch_size"),
            "serving.dynamic_batching needs serving.max_batch_size > 0; set serving.dynamic_batching "
            "to null to serve without batching",
        )


@check
def gpu_instances_need_gpus(r: Recipe) -> Iterator[Violation]:
    instances = getattr(r.serving, "instances", None)
    if instances is not None and instances.kind == "gpu" and r.serving.resources.gpu < 1:
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
    tp = getattr(r.serving, "tensor_parallel_size", None)
    if tp is not None and tp > r.serving.resources.gpu:
        yield Violation(
            ("serving.tensor_parallel_size", "serving.resources.gpu"),
            f"serving.tensor_parallel_size ({tp}) must be <= serving.resources.gpu ({r.serving.resources.gpu}), the GPUs of a replica",
        )


@check
def exl2_is_not_sharded(r: Recipe) -> Iterator[Violation]:
    tp = getattr(r.serving, "tensor_parallel_size", 1)
    if r.serving.backend == "tgi" and getattr(r.model, "quantization", "none") == "exl2" and tp > 1:
        yield Violation(
            ("model.quantization", "serving.tensor_parallel_size"),
            f"model.quantization exl2 cannot be sharded by TGI: serving.tensor_parallel_size must be 1, not {tp}",
        )


# TGI's --dtype takes float16 or bfloat16 (auto: the weights' own).
TGI_DTYPES = ("auto", "float16", "bfloat16")


@check
def dtype_fits_backend(r: Recipe) -> Iterator[Violation]:
    dtype = getattr(r.model, "dtype", "auto")
    if r.serving.backend == "tgi" and dtype not in TGI_DTYPES:
        yield Violation(
            ("model.dtype", "serving.backend"),
            f"model.dtype {dtype} is not served by serving.backend tgi: use {', '.join(TGI_DTYPES)}",
        )


@check
def served_context_fits_model(r: Recipe) -> Iterator[Violation]:
    if r.model.kind != "llm":
        return
    for key in ("max_model_len", "max_total_tokens"):
        served = getattr(r.serving, key, None)
        if served is not None and served > r.model.max_model_len:
            yield Violation(
                (f"serving.{key}", "model.max_model_len"),
                f"serving.{key} ({served}) must be <= model.max_model_len ({r.model.max_model_len})",
            )


@check
def prompt_leaves_room_to_answer(r: Recipe) -> Iterator[Violation]:
    prompt = getattr(r.serving, "max_input_length", None)
    if prompt is None or r.model.kind != "llm":
        return
    total = r.serving.max_total_tokens
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
    ongoing = getattr(r.serving, "max_ongoing_requests", None)
    if r.serving.backend == "ray_serve" and ongoing < r.serving.max_batch_size:
        yield Violation(
            ("serving.max_ongoing_requests", "serving.max_batch_size"),
            f"serving.max_ongoing_requests ({ongoing}) must be >= serving.max_batch_size "
            f"({r.serving.max_batch_size}), or batches never fill",
        )


TRITON_FIXED_PORTS = {8001: "gRPC", 8002: "metrics"}


@check
def triton_port_is_free(r: Recipe) -> Iterator[Violation]:
    if r.serving.backend == "triton" and r.serving.port in TRITON_FIXED_PORTS:
        yield Violation(
            ("serving.port",),
            f"serving.port {r.serving.port} is Triton's {TRITON_FIXED_PORTS[r.serving.port]} port: choose another HTTP port",
        )


@check
def whole_gpus_for_pytorchjob(r: Recipe) -> Iterator[Violation]:
    if r.training is not None and r.training.engine == "pytorchjob" and r.training.gpus_per_worker % 1:
        yield Violation(
            ("training.gpus_per_worker", "training.engine"),
            f"training.gpus_per_worker {r.training.gpus_per_worker} must be whole with training.engine pytorchjob: "
            "pods get whole GPUs (fractions work with engine ray)",
        )


@check
def torchscript_only_on_triton(r: Recipe) -> Iterator[Violation]:
    if getattr(r.serving, "format", "onnx") == "torchscript" and r.serving.backend != "triton":
        yield Violation(("serving.format", "serving.backend"), f"serving.format torchscript needs serving.backend triton, not {r.serving.backend}")


# --- rollout ---------------------------------------------------------------------------
@check
def canary_steps_rise_to_100(r: Recipe) -> Iterator[Violation]:
    steps = getattr(r.rollout, "steps", None)
    if steps is None:
        return
    for before, after in zip(steps, steps[1:]):
        if after <= before:
            yield Violation(("rollout.steps",), f"rollout.steps must rise strictly: {after} follows {before} in {steps}")
            return
    if steps[-1] != 100:
        yield Violation(("rollout.steps",), f"rollout.steps must end at 100, the full rollout; ends at {steps[-1]} in {steps}")


@check
def analysis_needs_metrics(r: Recipe) -> Iterator[Violation]:
    if r.rollout.strategy != "direct" and not r.monitoring.metrics.enabled:
        yield Violation(
            ("rollout.strategy", "monitoring.metrics.enabled"),
            f"rollout.strategy {r.rollout.strategy} is judged on live metrics: it needs "
            "monitoring.metrics.enabled true (or use strategy direct)",
        )


@check
def traffic_routing_needs_istio(r: Recipe) -> Iterator[Violation]:
    if r.rollout.strategy in ("canary", "shadow", "blue_green", "bandit") and not r.deploy.istio:
        yield Violation(
            ("rollout.strategy", "deploy.istio"),
            f"rollout.strategy {r.rollout.strategy} routes traffic with Istio: set deploy.istio true or use strategy direct",
        )


@check
def ray_serve_llm_rolls_out_directly(r: Recipe) -> Iterator[Violation]:
    if r.serving.backend == "ray_serve_llm" and r.rollout.strategy != "direct":
        yield Violation(
            ("rollout.strategy", "serving.backend"),
            f"rollout.strategy {r.rollout.strategy} routes traffic between model versions, which serving.backend "
            "ray_serve_llm cannot (KubeRay owns the pods and Ray Serve LLM serves one model): use strategy direct",
        )


# --- data ----------------------------------------------------------------------------
@check
def target_not_a_feature(r: Recipe) -> Iterator[Violation]:
    if r.data is not None and r.data.target in r.data.features:
        yield Violation(("data.target", "data.features"), f"data.target '{r.data.target}' must not be among data.features")


@check
def columns_unique(r: Recipe) -> Iterator[Violation]:
    if r.data is None:
        return
    for key in ("features", "extra_columns"):
        values = getattr(r.data, key)
        repeated = sorted({c for c in values if values.count(c) > 1})
        if repeated:
            yield Violation((f"data.{key}",), f"data.{key} lists {', '.join(repeated)} more than once")
    both = sorted(set(r.data.features) & set(r.data.extra_columns))
    if both:
        yield Violation(("data.extra_columns", "data.features"), f"data.extra_columns {', '.join(both)} must not also be data.features")


@check
def categorical_are_features(r: Recipe) -> Iterator[Violation]:
    if r.data is None:
        return
    for column in r.data.categorical:
        if column not in r.data.features:
            yield Violation(
                ("data.categorical", "data.features"),
                f"data.categorical '{column}' is not in data.features{did_you_mean(column, r.data.features)}",
            )


@check
def features_are_not_outputs(r: Recipe) -> Iterator[Violation]:
    """Each raw feature is an input tensor named after its column (framework/signature.py):
    a column named like an output would make two tensors of one name."""
    if r.data is None or getattr(r.model, "kind", None) != "tabular":
        return
    outputs = set(OUTPUTS[r.model.task])
    for column in r.data.features:
        if column in outputs:
            yield Violation(
                ("data.features",),
                f"data.features '{column}' has the name of the model's output '{column}'; rename the column in the data",
            )


@check
def boosting_needs_lightgbm(r: Recipe) -> Iterator[Violation]:
    if getattr(r.model, "boosting", None) is not None and r.model.architecture != "lightgbm":
        yield Violation(
            ("model.boosting", "model.architecture"),
            f"model.boosting sets LightGBM's trees but model.architecture is {r.model.architecture}: "
            "set model.architecture: lightgbm, or drop model.boosting",
        )


@check
def network_keys_need_hidden_layers(r: Recipe) -> Iterator[Violation]:
    """hidden_sizes, dropout, activation and batch_norm shape hidden layers, which a linear
    model and boosted trees do not have: set, they would change nothing."""
    architecture = getattr(r.model, "architecture", None)
    if architecture not in ("linear", "lightgbm"):
        return
    m = r.model
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
    if getattr(r.model, "architecture", None) != "lightgbm" or r.training is None:
        return
    if r.training.engine != "ray":
        yield Violation(("model.architecture", "training.engine"),
                        "model.architecture lightgbm trains with Ray Train's LightGBMTrainer: set training.engine: ray")
    if r.training.gpus_per_worker > 0:
        yield Violation(("model.architecture", "training.gpus_per_worker"),
                        "model.architecture lightgbm trains on CPUs (the LightGBM wheel has no CUDA): "
                        "set training.gpus_per_worker: 0")
    if getattr(r.serving, "format", None) == "torchscript":
        yield Violation(("model.architecture", "serving.format"),
                        "model.architecture lightgbm exports to ONNX (Triton's onnxruntime backend): set serving.format: onnx")
    if r.training.distillation is not None:
        yield Violation(("model.architecture", "training.distillation"),
                        "model.architecture lightgbm cannot be a distillation student (soft targets need a network's "
                        "logits): use architecture mlp or drop training.distillation")


@check
def torchscript_inputs_are_identifiers(r: Recipe) -> Iterator[Violation]:
    """Triton's libtorch binds the inputs to forward()'s arguments by name."""
    if r.data is None or getattr(r.serving, "format", None) != "torchscript":
        return
    for column in r.data.features:
        if not column.isidentifier() or keyword.iskeyword(column):
            yield Violation(
                ("data.features", "serving.format"),
                f"data.features '{column}' is not a Python identifier, which serving.format torchscript needs "
                "(Triton's libtorch binds inputs to forward() arguments); rename it or use serving.format onnx",
            )


@check
def expectations_name_columns(r: Recipe) -> Iterator[Violation]:
    if r.data is None:
        return
    columns = r.data.columns()
    for column, expectation in r.data.expectations.columns.items():
        if column not in columns:
            yield Violation(
                (f"data.expectations.columns.{column}", "data.features"),
                f"data.expectations.columns.{column} checks a column that is not in data.features, "
                f"data.target or data.extra_columns{did_you_mean(column, columns)}",
            )
        if expectation.min is not None and expectation.max is not None and expectation.min > expectation.max:
            yield Violation(
                (f"data.expectations.columns.{column}.min", f"data.expectations.columns.{column}.max"),
                f"data.expectations.columns.{column}.min ({expectation.min}) must be <= "
                f"data.expectations.columns.{column}.max ({expectation.max})",
            )


@check
def class_fraction_needs_classes(r: Recipe) -> Iterator[Violation]:
    if r.data is None or r.data.expectations.table.min_class_fraction is None:
        return
    if getattr(r.model, "task", None) == "regression":
        yield Violation(
            ("data.expectations.table.min_class_fraction", "model.task"),
            "data.expectations.table.min_class_fraction needs classes, but model.task is regression",
        )


# A job on a cluster starts in the image's working directory: nothing of the project's
# checkout is there. Read as runtime/data.py reads a URI: a scheme of two letters or more
# (s3://, gs://, https://) is remote; `file:` and plain paths are local, and relative
# unless they start at the root.
def is_relative_uri(uri: str) -> bool:
    """True when `uri` names a path relative to the project root."""
    from urllib.parse import urlparse

    parsed = urlparse(uri)
    if parsed.scheme.lower() == "file":
        return parsed.netloc not in ("", "localhost") or not parsed.path.startswith("/")
    if len(parsed.scheme) > 1:
        return False
    return not uri.startswith(("/", "\\")) and not re.match(r"^[A-Za-z]:[\\/]", uri)


@check
def cluster_jobs_read_reachable_data(r: Recipe) -> Iterator[Violation]:
    if r.data is None or r.training is None or r.environment == "dev" or not is_relative_uri(r.data.source.uri):
        return
    job = "a RayJob" if r.training.engine == "ray" else "a PyTorchJob"
    yield Violation(
        ("data.source.uri", "training.engine", "environment"),
        f"data.source.uri '{r.data.source.uri}' is relative to the project, but training.engine {r.training.engine} "
        f"trains in {job} on the cluster in environment {r.environment}, which cannot see this checkout: use "
        "s3://bucket/path, gs://bucket/path, or an absolute path on a volume mounted in the job's pods",
    )


def is_remote_uri(uri: str) -> bool:
    """True for an object store or other network URI (s3://, gs://, https://): what a pod
    on a cluster can reach without a volume."""
    from urllib.parse import urlparse

    scheme = urlparse(uri).scheme.lower()
    return len(scheme) > 1 and scheme != "file"


# --- batch: the batch RayJob (ray/batch-rayjob.yaml) and its CronJob -------------------
@check
def batch_job_needs_input_and_output(r: Recipe) -> Iterator[Violation]:
    batch = r.batch
    missing = [f"batch.{key}" for key in ("input", "output") if getattr(batch, key) is None]
    if batch.schedule is not None and missing:
        yield Violation(
            ("batch.schedule", "batch.input", "batch.output"),
            f"batch.schedule '{batch.schedule}' starts the batch RayJob, which scores batch.input into batch.output; "
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set: set both, or drop batch.schedule",
        )
    elif len(missing) == 1:
        given = "batch.output" if missing[0] == "batch.input" else "batch.input"
        yield Violation(
            (given, missing[0]),
            f"{given} is set but {missing[0]} is not: the batch RayJob scores batch.input into batch.output; "
            "set both, or neither",
        )


@check
def batch_job_scores_tabular_models(r: Recipe) -> Iterator[Violation]:
    if r.model.kind == "tabular":
        return
    for key in ("input", "output"):
        if getattr(r.batch, key) is not None:
            yield Violation(
                (f"batch.{key}", "model.kind"),
                f"batch.{key} sets up the batch RayJob, which scores tabular models (`mlops batch`), but model.kind "
                f"is {r.model.kind}: drop batch.input and batch.output",
            )
            return


@check
def batch_job_scores_onnx(r: Recipe) -> Iterator[Violation]:
    """`mlops batch` scores the registered ONNX file with ONNX Runtime."""
    if r.batch.on_cluster and getattr(r.serving, "format", "onnx") != "onnx":
        yield Violation(
            ("batch.input", "serving.format"),
            f"batch.input sets up the batch RayJob, which scores the registered ONNX model with ONNX Runtime, but "
            f"serving.format {r.serving.format} registers a TorchScript file: use serving.format onnx, or drop "
            "batch.input and batch.output",
        )


@check
def batch_job_reaches_its_data(r: Recipe) -> Iterator[Violation]:
    batch = r.batch
    if r.environment == "dev" or not batch.on_cluster:
        return
    if is_relative_uri(batch.input):
        yield Violation(
            ("batch.input", "environment"),
            f"batch.input '{batch.input}' is relative to the project, but the batch RayJob reads it on the cluster in "
            f"environment {r.environment}, which cannot see this checkout: use s3://bucket/path, gs://bucket/path, "
            "or an absolute path in the job's image",
        )
    if not is_remote_uri(batch.output):
        yield Violation(
            ("batch.output", "environment"),
            f"batch.output '{batch.output}' is a local path, but the batch RayJob writes it from a pod on the cluster "
            f"in environment {r.environment}, whose files go with the job: use s3://bucket/path or gs://bucket/path",
        )


def _folder(uri: str) -> str:
    return uri.rstrip("/") or uri


@check
def batch_output_apart_from_input(r: Recipe) -> Iterator[Violation]:
    batch = r.batch
    if not batch.on_cluster:
        return
    source, target = _folder(batch.input), _folder(batch.output)
    if source == target or source.startswith(target + "/") or target.startswith(source + "/"):
        yield Violation(
            ("batch.output", "batch.input"),
            f"batch.output '{batch.output}' overlaps batch.input '{batch.input}': each run of the batch RayJob "
            "replaces what batch.output holds, the input included; give the scores a folder of their own",
        )


# --- evaluation --------------------------------------------------------------------
def _task_metrics(r: Recipe) -> tuple[str, tuple[str, ...]]:
    if r.model.kind == "llm":
        return "an llm model (retrieval)", RETRIEVAL_METRICS
    if r.model.task == "regression":
        return "model.task regression", REGRESSION_METRICS
    return "model.task classification", CLASSIFICATION_METRICS


@check
def metrics_fit_task(r: Recipe) -> Iterator[Violation]:
    what, allowed = _task_metrics(r)
    for index, metric in enumerate(r.evaluation.metrics):
        if metric not in allowed:
            yield Violation(
                (f"evaluation.metrics.{index}", "model.kind"),
                f"evaluation.metrics.{index} ({metric}) does not apply to {what} (model.kind {r.model.kind}); "
                f"use {', '.join(allowed)}",
            )


@check
def gates_name_metrics(r: Recipe) -> Iterator[Violation]:


    for key in r.evaluation.gates.__pydantic_extra__ or {}:
        match = re.match(r"^(min|max)_(.+)$", key)
        metric = match.group(2) if match else None
        if metric is None or metric not in r.evaluation.metrics:
            candidates = [f"{b}_{m}" for m in r.evaluation.metrics for b in ("min", "max")]
            candidates += ["max_latency_p95_ms", "max_model_size_mb", "fairness", "onnx_parity_atol"]
            yield Violation(
                (f"evaluation.gates.{key}", "evaluation.metrics"),
                f"evaluation.gates.{key} is not a gate{did_you_mean(key, candidates)}: a threshold gate is min_<metric> or "
                f"max_<metric> for a metric in evaluation.metrics ({', '.join(r.evaluation.metrics)})",
            )


@check
def hpo_metric_is_evaluated(r: Recipe) -> Iterator[Violation]:
    hpo = r.training.hpo if r.training else None
    if hpo is None:
        return
    evaluated = [*r.evaluation.metrics, "loss"]
    if hpo.metric not in evaluated:
        yield Violation(
            ("training.hpo.metric", "evaluation.metrics"),
            f"training.hpo.metric '{hpo.metric}' is not computed: use loss or one of evaluation.metrics "
            f"({', '.join(r.evaluation.metrics)}){did_you_mean(hpo.metric, evaluated)}",
        )


_TUNABLE = ("model.", "training.")
_NOT_TUNABLE = ("training.hpo.", "training.distillation.", "training.engine", "model.kind", "model.task")


@check
def hpo_keys_exist(r: Recipe) -> Iterator[Violation]:
    hpo = r.training.hpo if r.training else None
    if hpo is None:
        return
    tree = r.model_dump()
    for key, param in hpo.search_space.items():
        if not key.startswith(_TUNABLE) or key.startswith(_NOT_TUNABLE):
            yield Violation(
                (f"training.hpo.search_space.{key}",),
                f"training.hpo.search_space.{key}: only model.* and training.* keys can be tuned "
                "(the data, its split and the search itself stay fixed across trials)",
            )
            continue
        value: Any = tree
        for part in key.split("."):
            value = value.get(part, _MISSING) if isinstance(value, dict) else _MISSING
        if value is _MISSING:
            yield Violation(
                (f"training.hpo.search_space.{key}",),
                f"training.hpo.search_space.{key}: '{key}' is not a key of the recipe "
                "(write a dotted path such as training.optimizer.lr)",
            )
        elif param.type in ("float", "int") and (isinstance(value, bool) or not isinstance(value, (int, float))):
            yield Violation(
                (f"training.hpo.search_space.{key}",),
                f"training.hpo.search_space.{key} is a {param.type} range but the recipe value is {type(value).__name__}",
            )


_MISSING = object()


@check
def fairness_attribute_is_a_column(r: Recipe) -> Iterator[Violation]:
    fairness = r.evaluation.gates.fairness
    if fairness is None:
        return
    if r.data is None:
        yield Violation(("evaluation.gates.fairness.attribute", "data"), "evaluation.gates.fairness needs a data section")
        return
    columns = r.data.columns()
    if fairness.attribute not in columns or fairness.attribute == r.data.target:
        yield Violation(
            ("evaluation.gates.fairness.attribute", "data.extra_columns"),
            f"evaluation.gates.fairness.attribute '{fairness.attribute}' is not a data column: add it to "
            f"data.extra_columns or data.features{did_you_mean(fairness.attribute, columns)}",
        )


@check
def evaluation_dataset_needs_data(r: Recipe) -> Iterator[Violation]:
    if r.evaluation.dataset is not None and r.data is None:
        yield Violation(("evaluation.dataset", "data"), "evaluation.dataset holds rows laid out like data.source: "
                        "it needs a data section (a tabular recipe)")


@check
def retrieval_eval_needs_rag(r: Recipe) -> Iterator[Violation]:
    if r.evaluation.retrieval is not None and r.rag is None:
        yield Violation(("evaluation.retrieval", "rag"), "evaluation.retrieval needs a rag section")
    if r.rag is not None and r.evaluation.retrieval is not None and r.evaluation.retrieval.k > r.rag.retriever.fetch_k:
        yield Violation(
            ("evaluation.retrieval.k", "rag.retriever.fetch_k"),
            f"evaluation.retrieval.k ({r.evaluation.retrieval.k}) must be <= rag.retriever.fetch_k ({r.rag.retriever.fetch_k})",
        )


# --- training ------------------------------------------------------------------------
@check
def distillation_needs_tabular(r: Recipe) -> Iterator[Violation]:
    if r.training is not None and r.training.distillation is not None and r.model.kind != "tabular":
        yield Violation(("training.distillation", "model.kind"), "training.distillation needs model.kind tabular")
    elif r.training is not None and r.training.distillation is not None and r.model.task != "classification":
        yield Violation(("training.distillation", "model.task"),
                        "training.distillation needs model.task classification (soft targets are class probabilities)")


@check
def checkpoints_within_epochs(r: Recipe) -> Iterator[Violation]:
    if r.training is not None and r.training.checkpoint.every_epochs > r.training.epochs:
        yield Violation(
            ("training.checkpoint.every_epochs", "training.epochs"),
            f"training.checkpoint.every_epochs ({r.training.checkpoint.every_epochs}) exceeds training.epochs "
            f"({r.training.epochs}): no checkpoint would be written, so nothing could resume",
        )


# --- rag --------------------------------------------------------------------------------
@check
def chunks_overlap_less_than_size(r: Recipe) -> Iterator[Violation]:
    if r.rag is not None and r.rag.chunking.overlap >= r.rag.chunking.size:
        yield Violation(
            ("rag.chunking.overlap", "rag.chunking.size"),
            f"rag.chunking.overlap ({r.rag.chunking.overlap}) must be < rag.chunking.size ({r.rag.chunking.size})",
        )


@check
def mmr_fetches_enough(r: Recipe) -> Iterator[Violation]:
    if r.rag is not None and r.rag.retriever.fetch_k < r.rag.retriever.k:
        yield Violation(
            ("rag.retriever.fetch_k", "rag.retriever.k"),
            f"rag.retriever.fetch_k ({r.rag.retriever.fetch_k}) must be >= rag.retriever.k ({r.rag.retriever.k})",
        )


@check
def prompt_has_placeholders(r: Recipe) -> Iterator[Violation]:
    if r.rag is None:
        return
    missing = [p for p in ("{context}", "{question}") if p not in r.rag.prompt]
    if missing:
        yield Violation(("rag.prompt",), f"rag.prompt must contain {' and '.join(missing)}")
