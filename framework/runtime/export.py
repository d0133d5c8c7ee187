"""Export a trained TabularNet: ONNX (gates, Triton onnxruntime, Ray Serve) and TorchScript.

ONNX is always exported, whatever `serving.format` says: the latency gate runs on ONNX
Runtime and parity checks the graph against torch. Its tensors take the ONNX names of
the signature (`features` -> `probabilities` | `prediction`); TorchScript tensors are
bound by position (Triton's INPUT__0 / OUTPUT__0), so tracing needs no names.

torch 2.13's `torch.onnx.export` is the dynamo exporter (torch.export + onnxscript):
  - the batch axis is dynamic through `dynamic_shapes` (not `dynamic_axes`);
  - the example batch must not be 1: torch.export specialises size-0/1 dimensions,
    so an example of batch 1 would conflict with the dynamic `batch` dimension;
  - `external_data=False` keeps weights inside the .onnx (one file to upload and
    serve; Triton's model repository wants `model.onnx` alone).
"""

from __future__ import annotations

import contextlib
import json
import logging
import warnings
from pathlib import Path

import numpy as np
import torch

from framework.errors import MlopsError, Problem
from framework.signature import TENSOR_NAMES, model_signature

EXPORT_BATCH = 2  # not 1: see the module docstring
BATCH_DIM = "batch"


@contextlib.contextmanager
def _quiet_exporter():
    """Hide the exporter's noise (missing torchvision ops, pytree FutureWarnings) from the terminal."""
    logger = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        logger.setLevel(level)


@contextlib.contextmanager
def _eval_mode(model: torch.nn.Module):
    was_training = model.training
    model.eval()  # dropout off, batch norm on running statistics: the served behaviour
    try:
        yield model
    finally:
        model.train(was_training)


def onnx_names(recipe) -> tuple[str, str]:
    """(input, output) tensor names of the ONNX graph."""
    input_name, outputs = TENSOR_NAMES["onnx"]
    return input_name, outputs[recipe.model.task]


def export_onnx(model: torch.nn.Module, recipe, path: str | Path) -> Path:
    """Write `model` as one self-contained ONNX file with a dynamic batch axis; checked."""
    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    signature = model_signature(recipe)
    input_name, output_name = onnx_names(recipe)
    example = torch.zeros(EXPORT_BATCH, signature.input.width, dtype=torch.float32)
    with _quiet_exporter(), _eval_mode(model), torch.no_grad():
        torch.onnx.export(
            model,
            (example,),
            str(path),
            input_names=[input_name],
            output_names=[output_name],
            dynamic_shapes=({0: torch.export.Dim(BATCH_DIM)},),
            external_data=False,
            dynamo=True,
            verbose=False,
        )
    graph = onnx.load(str(path))
    # Readable provenance for whoever opens the file (Netron, Triton logs).
    onnx.helper.set_model_props(
        graph,
        {
            "mlops.recipe": recipe.name,
            "mlops.columns": json.dumps(list(signature.columns)),
            "mlops.output": output_name,
        },
    )
    onnx.save_model(graph, str(path), save_as_external_data=False)
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except onnx.checker.ValidationError as error:
        raise MlopsError([Problem(None, "serving.format", f"exported ONNX model is invalid: {error}")]) from None
    _check_io(graph, input_name, output_name, signature.input.width, signature.output.width)
    return path


def _check_io(graph, input_name: str, output_name: str, width: int, out_width: int) -> None:
    """The exported graph must be the contract: [batch, width] in, [batch, out_width] out."""

    def dims(value_info):
        return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]

    inputs = {v.name: dims(v) for v in graph.graph.input}
    outputs = {v.name: dims(v) for v in graph.graph.output}
    expected_in, expected_out = {input_name: [BATCH_DIM, width]}, {output_name: [BATCH_DIM, out_width]}
    if inputs != expected_in or outputs != expected_out:
        message = f"exported ONNX tensors {inputs} -> {outputs} differ from the signature {expected_in} -> {expected_out}"
        raise MlopsError([Problem(None, "serving.format", message)])


def ort_session(onnx_path: str | Path, threads: int | None = None):
    """An ONNX Runtime CPU session (the gates run on CPU like Triton's CPU instances)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(str(onnx_path), sess_options=options, providers=["CPUExecutionProvider"])


def parity(model: torch.nn.Module, onnx_path: str | Path, sample: np.ndarray) -> float:
    """Largest |torch - ONNX Runtime| over every output of `sample` ([n, width] float32)."""
    sample = np.ascontiguousarray(sample, dtype=np.float32)
    with _eval_mode(model), torch.no_grad():
        expected = model(torch.from_numpy(sample)).cpu().numpy()
    session = ort_session(onnx_path)
    actual = session.run(None, {session.get_inputs()[0].name: sample})[0]
    if actual.shape != expected.shape:
        raise MlopsError(f"ONNX output shape {actual.shape} differs from torch's {expected.shape}")
    return float(np.max(np.abs(actual - expected))) if expected.size else 0.0


def export_torchscript(model: torch.nn.Module, path: str | Path) -> Path:
    """Trace `model` to TorchScript for Triton's libtorch backend (serving.format torchscript).

    The network has no data-dependent control flow, so a trace is exact; the trace is
    checked on a second batch size, so a baked-in batch dimension would fail here.
    torch.jit is deprecated in torch 2.13 but is still what Triton's libtorch loads.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    width = model.width
    with _quiet_exporter(), _eval_mode(model), torch.no_grad():
        traced = torch.jit.trace(
            model,
            torch.zeros(EXPORT_BATCH, width),
            check_inputs=[(torch.randn(5, width),)],
        )
        torch.jit.save(traced, str(path))
    return path


def load_torchscript(path: str | Path) -> torch.jit.ScriptModule:
    with _quiet_exporter():
        return torch.jit.load(str(path), map_location="cpu")
