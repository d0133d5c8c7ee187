"""A distillation teacher found, downloaded and loaded: an MLflow registry or run URI or
any artifact URI; an MLflow flavour model (pyfunc), this framework's ONNX or TorchScript
file with its feature_pipeline.json, or a bare graph. Every failure is an MlopsError on
`training.distillation.teacher`."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from framework.errors import MlopsError, Problem

KEY = "training.distillation.teacher"
PROBABILITY_FLOOR = 1e-7  # log(0) would be -inf; softmax(-inf / T) is 0 anyway, but gradients hate inf
PROBABILITY_TOLERANCE = 1e-3  # rows of float32 probabilities sum to 1 within this
PIPELINE_FILE = "feature_pipeline.json"
ONNX_FILE = "model.onnx"
TORCHSCRIPT_FILE = "model.pt"
MLMODEL_FILE = "MLmodel"
ONNX_INPUT, ONNX_PROBABILITIES, ONNX_PREDICTION = "features", "probabilities", "prediction"
BATCH = 4096  # rows per teacher call: bounds memory on big training sets


def _error(message: str, key: str = KEY) -> MlopsError:
    return MlopsError([Problem(None, key, message)])


def _names(items: Sequence[Any], limit: int = 8) -> str:
    shown = ", ".join(str(item) for item in list(items)[:limit])
    return shown + (f", ... ({len(items)} in all)" if len(items) > limit else "")


# --- the teacher ----------------------------------------------------------------------
@dataclass
class _Teacher:
    """A loaded teacher: how to run it and what it knows about its own contract."""

    uri: str
    kind: str  # "onnx", "torchscript" or "pyfunc"
    run: Callable[[np.ndarray], Any]  # a batch [n, width] float32 -> raw output
    outputs_probabilities: bool | None  # True: the contract says probabilities; None: decide by the rule
    input_width: int | None = None
    pipeline: dict[str, Any] | None = None
    input_columns: list[str] | None = None  # a column-based pyfunc signature's names
    raw_columns: list[str] | None = None  # a raw-column model (this framework's): `run` takes {column: [rows, 1]}


# --- download -------------------------------------------------------------------------
def _download(uri: str, tracking_uri: str, scratch: Path) -> Path:
    """The teacher's files on local disk (a directory, or a single model file)."""
    from mlflow.artifacts import download_artifacts
    from mlflow.exceptions import MlflowException

    if uri.startswith("models:/"):
        location = _registry_location(uri, tracking_uri)
    elif uri.startswith("runs:/"):
        location = _run_location(uri, tracking_uri)
    else:
        location = uri
    try:
        # registry_uri too: whatever MLflow resolves on its own then asks tracking_uri,
        # never its default registry (a sqlite mlflow.db in the working directory).
        return Path(download_artifacts(
            artifact_uri=location, dst_path=str(scratch), tracking_uri=tracking_uri, registry_uri=tracking_uri
        ))
    except MlflowException as exc:
        # MLflow lists failures as "##### File <name> #####" blocks: one line of text here.
        lines = [line.strip() for line in (exc.message or "").splitlines()]
        detail = " ".join(line for line in lines if line and not line.startswith("#####")).rstrip(":. ")
        detail = detail or exc.error_code
        hint = "check the run id and the artifact path (this framework logs its model under 'model')" \
            if uri.startswith("runs:/") else "check the URI and that the artifacts exist"
        raise _error(f"{uri}: cannot download the teacher from {tracking_uri}: {detail}: {hint}") from None
    except OSError as exc:
        raise _error(f"{uri}: cannot download the teacher: {exc}: check the URI and the artifact store's access") from None


def _run_location(uri: str, tracking_uri: str) -> str:
    """Where the files of `runs:/<run id>/<path>` lie.

    Resolved here rather than by MLflow's runs:/ repository: an MLflow 3 logged model
    (`log_model(name=...)`) keeps its files outside the run's artifacts, and MLflow's
    fallback for it looks the model up in the default store (./mlflow.db in the working
    directory), not in tracking_uri.
    """
    from mlflow.exceptions import MlflowException

    from framework.runtime.tracking import client

    run_id, _, path = uri.removeprefix("runs:/").partition("/")
    path = path.strip("/")
    try:
        mlflow_client = client(tracking_uri)
        try:
            run = mlflow_client.get_run(run_id)
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                raise _error(f"{uri}: no run '{run_id}' in {tracking_uri}: check the run id (runs:/<run id>/<artifact path>)") from None
            raise
        name, _, rest = path.partition("/")
        if name and "'" not in name:
            logged = [
                model
                for model in mlflow_client.search_logged_models(
                    experiment_ids=[run.info.experiment_id], filter_string=f"name = '{name}'"
                )
                if model.source_run_id == run_id
            ]
            if logged:
                newest = max(logged, key=lambda model: model.creation_timestamp or 0)
                return "/".join(part for part in (newest.artifact_location.rstrip("/"), rest) if part)
    except MlflowException as exc:
        raise _error(f"{uri}: cannot read the run from {tracking_uri}: {exc.message}") from None
    return "/".join(part for part in (run.info.artifact_uri.rstrip("/"), path) if part)


def _registry_location(uri: str, tracking_uri: str) -> str:
    """Where the files of a `models:/name@alias` or `models:/name/<version>` version lie."""
    from mlflow.exceptions import MlflowException

    from framework.runtime.tracking import client

    body = uri.removeprefix("models:/").rstrip("/")
    if body.startswith("m-") and "/" not in body and "@" not in body:  # an MLflow 3 logged model id
        try:
            return client(tracking_uri).get_logged_model(body).artifact_location
        except MlflowException as exc:
            raise _error(f"{uri}: no logged model '{body}' in {tracking_uri}: {exc.message}: fix the URI") from None
    if "@" in body:
        name, alias = body.split("@", 1)
        version = None
    elif "/" in body:
        name, version = body.rsplit("/", 1)
        alias = None
    else:
        raise _error(f"{uri}: a registry URI names a version or an alias: models:/{body}@<alias> or models:/{body}/<version>")
    fix = "register the teacher first or fix the URI"
    try:
        mlflow_client = client(tracking_uri)
        try:
            model = mlflow_client.get_registered_model(name)
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                raise _error(f"{uri}: no registered model '{name}' in {tracking_uri}: {fix}") from None
            raise
        if alias is not None:
            aliases = dict(model.aliases or {})
            if alias not in aliases:
                known = ", ".join(f"{a} -> {v}" for a, v in sorted(aliases.items())) or "none"
                raise _error(
                    f"{uri}: no model version '{name}' with alias '{alias}' in {tracking_uri} "
                    f"(aliases: {known}): {fix}"
                )
            version = str(aliases[alias])
        elif not version.isdigit():
            raise _error(f"{uri}: '{version}' is not a version number: use models:/{name}/<version> or models:/{name}@<alias>")
        try:
            return mlflow_client.get_model_version_download_uri(name, version)
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                versions = sorted((int(v.version) for v in mlflow_client.search_model_versions(f"name='{name}'")))
                raise _error(
                    f"{uri}: no version {version} of model '{name}' in {tracking_uri} "
                    f"(versions: {_names(versions) or 'none'}): {fix}"
                ) from None
            raise
    except MlflowException as exc:
        raise _error(f"{uri}: cannot read the model registry at {tracking_uri}: {exc.message}") from None


# --- loading --------------------------------------------------------------------------
def _load(uri: str, local: Path) -> _Teacher:
    if local.is_file():
        if local.suffix == ".onnx":
            return _load_onnx(uri, local, None)
        if local.suffix == ".pt":
            return _load_torchscript(uri, local, None)
        raise _error(f"{uri}: '{local.name}' is not a model: point the URI at the model directory "
                     f"(with {ONNX_FILE}, {TORCHSCRIPT_FILE} or an MLflow {MLMODEL_FILE})")
    pipeline = _read_pipeline(uri, local / PIPELINE_FILE)
    if (local / MLMODEL_FILE).is_file():
        return _load_pyfunc(uri, local, pipeline)
    if (local / ONNX_FILE).is_file():
        return _load_onnx(uri, local / ONNX_FILE, pipeline)
    if (local / TORCHSCRIPT_FILE).is_file():
        return _load_torchscript(uri, local / TORCHSCRIPT_FILE, pipeline)
    found = sorted(p.name for p in local.iterdir())
    raise _error(
        f"{uri}: no {ONNX_FILE}, {TORCHSCRIPT_FILE} or MLflow {MLMODEL_FILE} in the teacher's artifacts "
        f"(found: {_names(found) or 'nothing'}): point the URI at a model directory"
    )


def _read_pipeline(uri: str, path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise _error(f"{uri}: cannot read the teacher's {PIPELINE_FILE}: {exc}") from None
    if not isinstance(payload, dict):
        raise _error(f"{uri}: the teacher's {PIPELINE_FILE} is not a JSON object")
    if payload.get("task") == "regression":
        raise _error(f"{uri}: the teacher is a regression model; distillation needs a classifier as teacher")
    return payload


def _load_onnx(uri: str, path: Path, pipeline: dict[str, Any] | None) -> _Teacher:
    from framework.runtime.training.export import ort_session

    try:
        session = ort_session(path)
    except Exception as exc:  # onnxruntime raises its own untyped errors for bad graphs
        raise _error(f"{uri}: ONNX Runtime cannot load the teacher's {path.name}: {exc}") from None
    inputs, outputs = session.get_inputs(), [o.name for o in session.get_outputs()]
    if ONNX_PROBABILITIES in outputs and _takes_columns(inputs):
        names = [i.name for i in inputs]
        return _Teacher(uri, "onnx", lambda batch: session.run([ONNX_PROBABILITIES], batch)[0], True, None, pipeline,
                        raw_columns=names)
    if len(inputs) != 1:
        raise _error(f"{uri}: the teacher's ONNX graph takes {len(inputs)} inputs; a tabular teacher takes one [rows, features]")
    if ONNX_PROBABILITIES in outputs:
        output, probabilities = ONNX_PROBABILITIES, True
    elif outputs == [ONNX_PREDICTION]:
        raise _error(f"{uri}: the teacher is a regression model (output '{ONNX_PREDICTION}'); distillation needs a classifier")
    elif len(outputs) == 1:
        output, probabilities = outputs[0], None
    else:
        raise _error(f"{uri}: the teacher's ONNX graph has outputs {', '.join(outputs)} and none is '{ONNX_PROBABILITIES}'")
    shape = inputs[0].shape
    width = shape[1] if len(shape) == 2 and isinstance(shape[1], int) else None
    name = inputs[0].name
    return _Teacher(uri, "onnx", lambda batch: session.run([output], {name: batch})[0], probabilities, width, pipeline)


def _load_torchscript(uri: str, path: Path, pipeline: dict[str, Any] | None) -> _Teacher:
    import torch

    from framework.runtime.training.export import load_torchscript

    try:
        module = load_torchscript(path).eval()
    except Exception as exc:  # torch.jit raises RuntimeError and friends for non-TorchScript files
        raise _error(f"{uri}: torch cannot load the teacher's {path.name} as TorchScript: {exc}") from None

    if pipeline is not None and pipeline.get("features"):  # this framework's raw-column TorchScript
        from framework.runtime.serving.repository import TorchScriptRunner

        columns = list(pipeline["features"])
        categorical = set(pipeline.get("categorical") or {})
        inputs = [(c, "BYTES" if c in categorical else "FP32") for c in columns]
        runner = TorchScriptRunner.of_module(module, inputs, ["scores", "label"])
        return _Teacher(uri, "torchscript", lambda batch: runner.run(batch)["scores"], True, None, pipeline,
                        raw_columns=columns)

    def run(batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return module(torch.from_numpy(batch)).cpu().numpy()

    width = _pipeline_width(pipeline)
    return _Teacher(uri, "torchscript", run, True, width, pipeline)


def _load_pyfunc(uri: str, path: Path, pipeline: dict[str, Any] | None) -> _Teacher:
    import mlflow.pyfunc

    try:
        model = mlflow.pyfunc.load_model(str(path))
    except Exception as exc:  # any flavour's loader: missing packages, bad files, ...
        raise _error(f"{uri}: mlflow.pyfunc cannot load the teacher: {exc}") from None
    width, columns = None, None
    schema = model.metadata.get_input_schema() if model.metadata is not None else None
    if schema is not None:
        if schema.is_tensor_spec():
            shape = schema.inputs[0].shape if len(schema.inputs) == 1 else ()
            width = shape[1] if len(shape) == 2 and shape[1] > 0 else None
        elif schema.has_input_names():
            columns = list(schema.input_names())
            width = len(columns)

    def run(batch: np.ndarray) -> Any:
        if columns is not None:
            import pandas as pd

            return model.predict(pd.DataFrame(batch, columns=columns))
        return model.predict(batch)

    return _Teacher(uri, "pyfunc", run, None, width or _pipeline_width(pipeline), pipeline, columns)


def _pipeline_width(pipeline: dict[str, Any] | None) -> int | None:
    return None if pipeline is None else len(_pipeline_columns(pipeline))


def _pipeline_columns(pipeline: dict[str, Any]) -> list[str]:
    # FeaturePipeline.columns without rebuilding the pipeline: numeric, then name=category.
    categorical = pipeline.get("categorical") or {}
    return [*pipeline.get("numeric", []), *(f"{n}={c}" for n, values in categorical.items() for c in values)]

def _takes_columns(inputs) -> bool:
    """A raw-column graph: one [rows, 1] input per column (a matrix teacher takes one [rows, width])."""
    return len(inputs) > 1 or (len(inputs) == 1 and len(inputs[0].shape) == 2 and inputs[0].shape[1] == 1)
