"""Export a trained TabularNet: ONNX (gates, Triton onnxruntime, Ray Serve) and TorchScript.

ONNX is always exported, whatever `serving.format` says: the latency gate runs on ONNX
Runtime and parity checks the graph against torch. The network is exported alone (its
input is the encoded matrix) and wrapped by onnx_columns.wrap_network into the served
graph, whose tensors are the signature's: one raw column per input, scores and label out.

The network goes through torch's TorchScript-based exporter (`dynamo=False`), not
torch 2.13's default dynamo exporter (torch.export + onnxscript): for a feed-forward
net without data-dependent control flow both give the same 28-node opset-20 graph, but
dynamo took 3.3 s of a cold apply (importing torch._dynamo and onnxscript, tracing)
against 0.4 s. The batch axis is dynamic through `dynamic_axes`; the example batch is
2, not 1, so no exporter can mistake the batch size for a constant.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from pathlib import Path

import numpy as np
import torch

from framework.errors import MlopsError, Problem
from framework.runtime.training.features import category_key
from framework.signature import model_signature

EXPORT_BATCH = 2  # not 1: see the module docstring (also the TorchScript trace example)
BATCH_DIM = "batch"
EXPORT_OPSET = 20  # what the dynamo exporter wrote; onnx_columns raises it to its own minimum


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


NETWORK_INPUT = "features"  # the network's own graph, before wrap_network adds the raw columns


def export_onnx(model: torch.nn.Module, recipe, pipeline, path: str | Path) -> Path:
    """Write the served ONNX file: raw columns in (the signature), preprocessing, the
    network, and the outputs; one self-contained file with a dynamic batch axis; checked."""
    import onnx

    from framework.runtime.training.onnx_columns import wrap_network

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    signature = model_signature(recipe)
    network_path = path.with_name(path.stem + ".network.onnx")
    example = torch.zeros(EXPORT_BATCH, pipeline.width, dtype=torch.float32)
    with _quiet_exporter(), _eval_mode(model), torch.no_grad():
        torch.onnx.export(
            model,
            (example,),
            str(network_path),
            input_names=[NETWORK_INPUT],
            output_names=[signature.scores.name],
            dynamic_axes={NETWORK_INPUT: {0: BATCH_DIM}, signature.scores.name: {0: BATCH_DIM}},
            opset_version=EXPORT_OPSET,
            dynamo=False,  # see the module docstring
            verbose=False,
        )
    network = onnx.load(str(network_path))
    network_path.unlink()
    return save_served(wrap_network(network, pipeline, signature, recipe.name), signature, path)


def save_served(graph, signature, path: Path) -> Path:
    """Save a wrapped model and check it is valid ONNX with exactly the signature's tensors."""
    import onnx

    onnx.save_model(graph, str(path), save_as_external_data=False)
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except onnx.checker.ValidationError as error:
        raise MlopsError([Problem(None, "serving.format", f"exported ONNX model is invalid: {error}")]) from None
    _check_io(graph, signature)
    return path


_ONNX_TYPES = {1: "FP32", 8: "BYTES"}  # TensorProto.FLOAT, TensorProto.STRING


def _check_io(graph, signature) -> None:
    """The exported graph must be the contract: each tensor's name, datatype and [batch, width]."""

    def described(values):
        return {
            v.name: (_ONNX_TYPES.get(v.type.tensor_type.elem_type, str(v.type.tensor_type.elem_type)),
                     [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim])
            for v in values
        }

    def expected(tensors):
        return {t.name: (t.dtype, [BATCH_DIM, t.width]) for t in tensors}

    inputs, outputs = described(graph.graph.input), described(graph.graph.output)
    if inputs != expected(signature.inputs) or outputs != expected(signature.outputs):
        message = (f"exported ONNX tensors {inputs} -> {outputs} differ from the signature "
                   f"{expected(signature.inputs)} -> {expected(signature.outputs)}")
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


def example_row(session) -> dict[str, np.ndarray]:
    """One row for every input of an ONNX Runtime session: random numbers for a numeric
    column, an unseen category ("") for a text one (the encoding's full path still runs)."""
    rng = np.random.default_rng(0)
    feed = {}
    for tensor in session.get_inputs():
        shape = [1 if not isinstance(d, int) or d < 1 else d for d in tensor.shape]
        if tensor.type == "tensor(string)":
            feed[tensor.name] = np.full(shape, "", dtype=object)
        else:
            feed[tensor.name] = rng.standard_normal(shape).astype(np.float32)
    return feed


def parity(model: torch.nn.Module, pipeline, onnx_path: str | Path, frame) -> float:
    """Largest |torch - ONNX Runtime| of the scores over `frame`'s rows: torch on the
    training-side encoding, ONNX Runtime on the raw columns through the in-graph
    preprocessing, so it checks the graph's encoding too. A regression's difference is
    in target standard deviations (scale-free, like a classifier's probabilities). A
    label that disagrees with the scores' top class is a parity failure (inf)."""
    def run(x: np.ndarray) -> np.ndarray:
        with _eval_mode(model), torch.no_grad():
            return model(torch.from_numpy(x)).cpu().numpy()

    return scores_parity(run, pipeline, onnx_path, frame)


def scores_parity(predict_encoded, pipeline, onnx_path: str | Path, frame) -> float:
    """`parity` for any model: `predict_encoded(x)` gives the scores on training's encoding."""
    expected = np.asarray(predict_encoded(pipeline.transform(frame)), dtype=np.float32)
    session = ort_session(onnx_path)
    names = [o.name for o in session.get_outputs()]
    outputs = dict(zip(names, session.run(None, pipeline.raw_inputs(frame))))
    actual = outputs[names[0]]
    if actual.shape != expected.shape:
        raise MlopsError(f"ONNX output shape {actual.shape} differs from torch's {expected.shape}")
    if not expected.size:
        return 0.0
    if pipeline.task == "classification":
        labels = np.array(pipeline.class_names, dtype=object)[expected.argmax(axis=1)]
        clear = ~_tied(expected)  # a near-tie may break either way between runtimes
        if not np.array_equal(outputs[names[1]].reshape(-1)[clear], labels[clear]):
            return float("inf")
        return float(np.max(np.abs(actual - expected)))
    return float(np.max(np.abs(actual - expected))) / pipeline.target_std


def _tied(scores: np.ndarray) -> np.ndarray:
    """Rows whose two best classes are within float error of each other."""
    top = np.sort(scores, axis=1)[:, -2:]
    return top[:, 1] - top[:, 0] < 1e-5


_TORCHSCRIPT_MODULE = """
from typing import List, Tuple

import torch


class RawColumns(torch.nn.Module):
    def __init__(self, network, medians: List[float], categories: List[List[str]], classes: List[str]):
        super().__init__()
        self.network = network
        self.medians = medians
        self.categories = categories
        self.classes = classes

    def _onehot(self, values: List[str], categories: List[str]) -> torch.Tensor:
        out = torch.zeros(len(values), len(categories))
        for row, value in enumerate(values):
            for column, category in enumerate(categories):
                if value == category:
                    out[row, column] = 1.0
        return out

    def forward(self, {arguments}) -> {returns}:
        numeric: List[torch.Tensor] = [{numeric}]
        filled: List[torch.Tensor] = []
        for index, column in enumerate(numeric):
            filled.append(torch.where(torch.isnan(column), torch.full_like(column, self.medians[index]), column))
        onehot: List[torch.Tensor] = [{onehot}]
        scores = self.network(torch.cat(filled + onehot, dim=1))
        {answer}
"""


def export_torchscript(model: torch.nn.Module, pipeline, path: str | Path) -> Path:
    """A TorchScript file for Triton's libtorch backend (serving.format torchscript) with
    the same raw-column contract as the ONNX graph: forward() takes one argument per
    feature, named after it (FP32 [batch, 1] tensors; List[str] for a categorical one,
    which is how libtorch passes TYPE_STRING), and returns the scores and, for a
    classifier, the labels as List[str].

    The network is traced (no data-dependent control flow: a trace is exact, checked on a
    second batch size); the raw-column wrapper is scripted from source generated for
    the recipe's columns (torch.jit.script reads a class's source from its file).
    torch.jit is deprecated in torch 2.13 but is still what Triton's libtorch loads.
    """
    import importlib.util
    import tempfile

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    width = model.width
    numeric = [c for c in pipeline.features if c not in pipeline.categorical]
    categorical = [c for c in pipeline.features if c in pipeline.categorical]
    classifier = pipeline.task == "classification"
    source = _TORCHSCRIPT_MODULE.format(
        arguments=", ".join(f"{c}: {'List[str]' if c in pipeline.categorical else 'torch.Tensor'}" for c in pipeline.features),
        returns="Tuple[torch.Tensor, List[str]]" if classifier else "torch.Tensor",
        numeric=", ".join(numeric),
        onehot=", ".join(f"self._onehot({c}, self.categories[{i}])" for i, c in enumerate(categorical)),
        answer=(
            "best: List[int] = torch.argmax(scores, dim=1).tolist()\n"
            "        return scores, [self.classes[i] for i in best]"
            if classifier else "return scores"
        ),
    )
    with _quiet_exporter(), _eval_mode(model), torch.no_grad(), tempfile.TemporaryDirectory() as folder:
        traced = torch.jit.trace(model, torch.zeros(EXPORT_BATCH, width), check_inputs=[(torch.randn(5, width),)])
        module_file = Path(folder) / "mlops_raw_columns.py"
        module_file.write_text(source, encoding="utf-8")
        spec = importlib.util.spec_from_file_location("mlops_raw_columns", module_file)
        generated = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(generated)
        wrapper = generated.RawColumns(
            traced,
            [float(pipeline.medians[c]) for c in numeric],
            [[category_key(v) for v in pipeline.categorical[c]] for c in categorical],
            pipeline.class_names or [],
        )
        torch.jit.save(torch.jit.script(wrapper), str(path))
    return path


def load_torchscript(path: str | Path) -> torch.jit.ScriptModule:
    with _quiet_exporter():
        return torch.jit.load(str(path), map_location="cpu")
