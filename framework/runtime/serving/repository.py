"""A Triton model repository, loaded for serving: numeric version folders
`<repo>/<model>/<version>/<model file>`, served with the model's typed config
(framework/contracts/triton.py: what config.pbtxt says; the file itself is never read).

Which versions load follows the config's version_policy as Triton applies it: `latest
{num_versions: N}` the N highest version numbers present, `specific` the listed ones
(a listed version missing on disk is reported UNAVAILABLE in the repository index),
`all` every one. ONNX files run on ONNX Runtime (CPU), `model.pt` files on TorchScript
(torch is imported only then). numpy and onnxruntime are imported here at module level:
only the serving app imports this module.
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from framework.errors import Location, MlopsError, Problem
from framework.contracts.triton import PLATFORMS, ModelConfig, ModelTensor

log = logging.getLogger("mlops.serve")

# KServe v2 datatype -> numpy dtype (little-endian, as the binary extension sends them).
NUMPY_DTYPES: dict[str, np.dtype] = {
    name: np.dtype(code)
    for name, code in {
        "BOOL": "?", "UINT8": "u1", "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8", "INT8": "i1", "INT16": "<i2",
        "INT32": "<i4", "INT64": "<i8", "FP16": "<f2", "FP32": "<f4", "FP64": "<f8",
    }.items()
}
COLUMNS_PROP, CLASSES_PROP = "mlops.columns", "mlops.classes"  # ONNX metadata the exporter writes


class Runner:
    """Runs one model version on a batch: {input name: array} -> {output name: array}."""

    columns: tuple[str, ...] | None = None  # names of the input's columns, when the file says
    classes: list[str] | None = None  # a classifier's class names, when the file says

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:  # pragma: no cover - interface
        raise NotImplementedError


class OnnxRunner(Runner):
    def __init__(self, path: Path, config: ModelConfig):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        # One thread per session: small models gain nothing from intra-op threads, and
        # spinning pool threads would take the CPU from the event loop. Concurrency comes
        # from instance_group.count batches running at once (ORT releases the GIL).
        options.intra_op_num_threads = int(os.environ.get("MLOPS_ORT_THREADS", "1"))
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise MlopsError([Problem(Location(str(path)), "", f"ONNX Runtime cannot load the model: {exc}")]) from None
        graph_inputs = {i.name for i in self.session.get_inputs()}
        graph_outputs = {o.name for o in self.session.get_outputs()}
        _check_names(path, "input", [t.name for t in config.input], graph_inputs)
        _check_names(path, "output", [t.name for t in config.output], graph_outputs)
        _check_datatypes(path, config, self.session)
        self.output_names = [t.name for t in config.output]
        meta = self.session.get_modelmeta().custom_metadata_map
        try:
            columns = json.loads(meta[COLUMNS_PROP]) if COLUMNS_PROP in meta else None
            self.columns = tuple(c["name"] if isinstance(c, dict) else c for c in columns) if columns else None
            self.classes = json.loads(meta[CLASSES_PROP]) if CLASSES_PROP in meta else None
        except (ValueError, TypeError, KeyError):
            self.columns = self.classes = None

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(self.output_names, self.session.run(self.output_names, inputs)))


class TorchScriptRunner(Runner):
    """Triton's libtorch convention: tensors bound by position (INPUT__0, OUTPUT__0)."""

    def __init__(self, path: Path, config: ModelConfig):
        import torch

        try:
            with warnings.catch_warnings():  # torch.jit is deprecated, yet it is what Triton's libtorch loads
                warnings.simplefilter("ignore", DeprecationWarning)
                self.module = torch.jit.load(str(path), map_location="cpu").eval()
        except Exception as exc:  # torch raises RuntimeError with the reason
            raise MlopsError([Problem(Location(str(path)), "", f"TorchScript cannot load the model: {exc}")]) from None
        self._bind(torch, [(t.name, t.datatype) for t in config.input], [t.name for t in config.output])
        classes = getattr(self.module, "classes", None)  # the exporter's raw-column module keeps its class names
        self.classes = [str(c) for c in classes] if isinstance(classes, list) and classes else None

    @classmethod
    def of_module(cls, module, inputs: list[tuple[str, str]], outputs: list[str]) -> TorchScriptRunner:
        """A runner of a loaded module: inputs as (name, datatype) in forward() order."""
        import torch

        runner = cls.__new__(cls)
        runner.module = module
        runner._bind(torch, inputs, outputs)
        return runner

    def _bind(self, torch, inputs: list[tuple[str, str]], outputs: list[str]) -> None:
        self.torch = torch
        self.input_names = [name for name, _ in inputs]
        self.output_names = list(outputs)
        self.text = {name for name, datatype in inputs if datatype == "BYTES"}

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Inputs bound in config order (`INPUT__<i>`, or forward()'s arguments named as
        the config's inputs); a BYTES input goes in as List[str], as libtorch passes it,
        and a List[str] output comes back as a [rows, 1] BYTES tensor."""
        torch = self.torch
        arguments = [
            [str(v) for v in inputs[n].reshape(-1)] if n in self.text else torch.from_numpy(_writable(inputs[n]))
            for n in self.input_names
        ]
        with torch.inference_mode():
            out = self.module(*arguments)
        outs = out if isinstance(out, tuple) else (out,)
        return {
            name: np.array(t, dtype=object).reshape(-1, 1) if isinstance(t, list) else t.numpy()
            for name, t in zip(self.output_names, outs)
        }


def _writable(array: np.ndarray) -> np.ndarray:
    """torch refuses read-only buffers (binary request data is a view of the body)."""
    return array if array.flags.writeable and array.flags.c_contiguous else np.array(array, order="C")


def _check_names(path: Path, what: str, expected: list[str], actual: set[str]) -> None:
    if set(expected) != actual:
        message = f"the model's {what}s {sorted(actual)} differ from the model config's {sorted(expected)}"
        raise MlopsError([Problem(Location(str(path)), "", message)])


_ORT_DATATYPES = {
    "tensor(float)": "FP32", "tensor(double)": "FP64", "tensor(float16)": "FP16", "tensor(string)": "BYTES",
    "tensor(int64)": "INT64", "tensor(int32)": "INT32", "tensor(int16)": "INT16", "tensor(int8)": "INT8",
    "tensor(uint8)": "UINT8", "tensor(bool)": "BOOL",
}


def _check_datatypes(path: Path, config: ModelConfig, session) -> None:
    """Each tensor's datatype in the model config must be the graph's (a TYPE_FP32 for a string
    input would fail at warm-up with ONNX Runtime's own error, or on every request)."""
    actual = {t.name: _ORT_DATATYPES.get(t.type) for t in [*session.get_inputs(), *session.get_outputs()]}
    for spec in [*config.input, *config.output]:
        found = actual.get(spec.name)
        if found is not None and found != spec.datatype:
            message = f"tensor '{spec.name}' is {found} in the model but {spec.datatype} in the model config"
            raise MlopsError([Problem(Location(str(path)), "", message)])


RUNNERS: dict[str, Callable[[Path, ModelConfig], Runner]] = {
    PLATFORMS["onnx"]: OnnxRunner,
    PLATFORMS["torchscript"]: TorchScriptRunner,
}


@dataclass
class ModelVersion:
    name: str
    version: str
    path: Path
    runner: Runner
    batch_seconds: float = 0.0  # fastest of a few runs of a full batch of zeros, measured at load


@dataclass
class Model:
    """One model of the repository: its config and the versions loaded, oldest first."""

    name: str
    config: ModelConfig
    versions: dict[str, ModelVersion]
    unavailable: dict[str, str] = field(default_factory=dict)  # version -> reason
    columns: tuple[str, ...] = ()  # one name per input column (request logging)

    @property
    def latest(self) -> str:
        return max(self.versions, key=int)

    def metadata(self, version: str | None = None) -> dict[str, Any]:
        """KServe v2 model metadata."""
        config = self.config

        def tensors(specs: tuple[ModelTensor, ...]) -> list[dict[str, Any]]:
            return [{"name": t.name, "datatype": t.datatype, "shape": config.full_shape(t)} for t in specs]

        out = {
            "name": self.name,
            "versions": [version] if version else list(self.versions),
            "platform": config.platform,
            "inputs": tensors(config.input),
            "outputs": tensors(config.output),
        }
        classes = self.versions[version or self.latest].runner.classes if self.versions else None
        if classes:
            out["parameters"] = {"classes": list(classes)}  # the class names of `probabilities`, in order
        return out

    def config_json(self) -> dict[str, Any]:
        """The model configuration in Triton's JSON field names (GET .../config)."""
        config = self.config

        def tensors(specs: tuple[ModelTensor, ...]) -> list[dict[str, Any]]:
            return [{"name": t.name, "data_type": t.data_type, "dims": list(t.dims)} for t in specs]

        version_policy = config.version_policy
        policy = {"latest": {"num_versions": version_policy.num_versions}} if version_policy.choice == "latest" else (
            {"specific": {"versions": list(version_policy.versions)}} if version_policy.choice == "specific" else {"all": {}}
        )
        out: dict[str, Any] = {
            "name": self.name,
            "platform": config.platform,
            "max_batch_size": config.max_batch_size,
            "input": tensors(config.input),
            "output": tensors(config.output),
            "version_policy": policy,
            "instance_group": [{"count": config.instance_count, "kind": "KIND_CPU"}],  # this app runs on CPUs
            "default_model_filename": config.default_model_filename,
        }
        if config.dynamic_batching is not None:
            out["dynamic_batching"] = {
                "preferred_batch_size": list(config.dynamic_batching.preferred_batch_size),
                "max_queue_delay_microseconds": config.dynamic_batching.max_queue_delay_microseconds,
            }
        return out


@dataclass
class Repository:
    path: Path
    models: dict[str, Model]

    def versions(self) -> dict[str, list[str]]:
        """Loaded versions of each model, oldest first."""
        return {name: list(model.versions) for name, model in self.models.items()}

    def index(self) -> list[dict[str, str]]:
        """KServe/Triton repository index: every model version and its state."""
        rows = []
        for name, model in sorted(self.models.items()):
            for version in sorted({*model.versions, *model.unavailable}, key=int):
                row = {"name": name, "version": version, "state": "READY" if version in model.versions else "UNAVAILABLE"}
                row["reason"] = model.unavailable.get(version, "")
                rows.append(row)
        return rows


def _version_dirs(model_dir: Path, filename: str) -> dict[int, Path]:
    found: dict[int, Path] = {}
    if not model_dir.is_dir():
        return found
    for child in model_dir.iterdir():
        if child.is_dir() and child.name.isdigit() and (child / filename).is_file():
            found[int(child.name)] = child / filename
    return found


def select_versions(config: ModelConfig, present: Mapping[int, Any]) -> tuple[list[int], dict[int, str]]:
    """(versions to load, oldest first; {version: reason} of versions the policy wants but lacks)."""
    policy = config.version_policy
    if policy.choice == "all":
        return sorted(present), {}
    if policy.choice == "specific":
        missing = {v: "not found in the model repository" for v in policy.versions if v not in present}
        return sorted(v for v in policy.versions if v in present), missing
    return sorted(present)[-policy.num_versions:] if policy.num_versions > 0 else [], {}


def load_model(model_dir: Path, config: ModelConfig, columns: tuple[str, ...] | None = None) -> Model:
    where = str(model_dir)
    if config.name and config.name != model_dir.name:
        message = f"the model config names the model '{config.name}' but its folder is '{model_dir.name}' (Triton requires them equal)"
        raise MlopsError([Problem(Location(where), "name", message)])
    runner_factory = RUNNERS.get(config.platform)
    if runner_factory is None:
        known = ", ".join(RUNNERS)
        raise MlopsError([Problem(Location(where), "platform", f"'{config.platform}' cannot be served here; supported: {known}")])
    present = _version_dirs(model_dir, config.default_model_filename)
    wanted, missing = select_versions(config, present)
    versions = {}
    for number in wanted:
        runner = runner_factory(present[number], config)
        _warm_up(runner, config)
        versions[str(number)] = ModelVersion(model_dir.name, str(number), present[number], runner, _time_batch(runner, config))
    if not versions:
        filename = config.default_model_filename
        message = f"no version folder with {filename} (e.g. {model_dir / '1' / filename})"
        raise MlopsError([Problem(Location(where), "", f"{message}: run `mlops apply` first")])
    model = Model(model_dir.name, config, versions, {str(v): r for v, r in missing.items()})
    model.columns = _columns(model, columns)
    return model


def _zeros(config: ModelConfig, batch: int) -> dict[str, np.ndarray]:
    lead = (batch,) if config.batching else ()

    def zeros(t: ModelTensor) -> np.ndarray:
        shape = lead + tuple(max(d, 1) for d in t.dims)
        if t.datatype == "BYTES":
            return np.full(shape, "", dtype=object)  # Triton's zero_data for TYPE_STRING: empty strings
        return np.zeros(shape, dtype=NUMPY_DTYPES.get(t.datatype, np.float32))

    return {t.name: zeros(t) for t in config.input}


def _warm_up(runner: Runner, config: ModelConfig) -> None:
    """Run zeros through the model (model_warmup): the first request pays no set-up."""
    for batch in [warmup.batch_size for warmup in config.model_warmup] or [1]:
        runner.run(_zeros(config, batch))


def _time_batch(runner: Runner, config: ModelConfig, runs: int = 5) -> float:
    """Seconds the model takes for its largest batch (the batcher decides where it runs)."""
    inputs = _zeros(config, max(config.max_batch_size, 1))
    best = float("inf")
    for _ in range(runs):
        began = time.perf_counter()
        runner.run(inputs)
        best = min(best, time.perf_counter() - began)
    return best


def _columns(model: Model, given: tuple[str, ...] | None) -> tuple[str, ...]:
    """A name per input column: given (the recipe's signature), the ONNX file's, or generic."""
    config = model.config
    width = sum(int(np.prod([max(d, 1) for d in t.dims])) for t in config.input)
    if given and len(given) == width:
        return tuple(given)
    newest = model.versions[model.latest].runner.columns
    if newest and len(newest) == width:
        return tuple(newest)
    names = []
    for t in config.input:
        n = int(np.prod([max(d, 1) for d in t.dims]))
        names += [t.name] if n == 1 else [f"{t.name}_{j}" for j in range(n)]
    return tuple(names)


def load_repository(
    path: Path,
    configs: Mapping[str, ModelConfig],
    columns: Mapping[str, tuple[str, ...]] | None = None,
) -> Repository:
    """Load the models `configs` names ({model: its config}) from the repository at `path`."""
    path = Path(path)
    if not path.is_dir():
        raise MlopsError([Problem(Location(str(path)), "", "no model repository here: run `mlops apply` first")])
    models = {}
    for name, config in configs.items():
        models[name] = load_model(path / name, config, (columns or {}).get(name))
        log.info("loaded %s versions %s", name, ", ".join(models[name].versions))
    if not models:
        raise MlopsError([Problem(Location(str(path)), "", "the model repository has no model: run `mlops apply` first")])
    return Repository(path, models)


__all__ = ["Repository", "Model", "ModelVersion", "Runner", "load_repository", "load_model", "select_versions", "NUMPY_DTYPES"]
