"""Knowledge distillation (`training.distillation`): a teacher's logits and the loss.

Two halves, used by the training job:

1. `teacher_logits(uri, x, tracking_uri=...)` loads the teacher named by an MLflow
   model URI and returns its logits for the student's feature matrix, once, on the
   driver, before training (the rows never change between epochs, so the teacher
   runs once instead of once per batch per epoch):
     - `models:/<name>@<alias>` and `models:/<name>/<version>` are resolved through the
       registry of `tracking_uri` (an MlflowClient bound to it, as in tracking.py);
     - `runs:/<run id>/<path>` and any artifact URI (file://, s3://, ...) are
       downloaded with `mlflow.artifacts.download_artifacts`.
   What was downloaded decides how it runs:
     - a directory with an `MLmodel` file: an MLflow flavour model, run through
       `mlflow.pyfunc` (pytorch, onnx, sklearn with pyfunc_predict_fn="predict_proba", ...);
     - a directory with `model.onnx` run on ONNX Runtime, or `model.pt` (TorchScript):
       what this framework registers takes the raw columns (framework/signature.py) and
       runs on the student's rows as request tensors (`raw=`); an older or foreign graph
       with one [rows, features] input runs on the student's encoded matrix;
       `feature_pipeline.json` beside it, which the framework always logs, gives the
       teacher's input columns and classes;
     - a single `.onnx` or `.pt` file: the same without the pipeline.
   Compatibility is checked before any training: the teacher's input columns (when it
   carries feature_pipeline.json and the caller passes `expected_features`) must be the
   student's, the teacher's input width must be x's, its output width the student's
   number of classes. Equal column or class sets in another order are not an error:
   x's columns are reordered to the teacher's layout, the teacher's output columns to
   the student's class order. Every failure is an MlopsError on the key
   `training.distillation.teacher` naming the URI and what to do.

2. `distillation_loss(...)` is the loss of Hinton et al. exactly as the seed writes it:
       soft_targets = softmax(teacher_logits / T)
       soft_loss = kl_div(log_softmax(student_logits / T), soft_targets, "batchmean") * T**2
       hard_loss = cross_entropy(student_logits, labels)
       loss = alpha * soft_loss + (1 - alpha) * hard_loss
   and `Distiller` is the per-batch helper a training loop holds (`from_recipe`).

Regression: distillation needs a classifier. Temperature-softened targets only exist
for class distributions; an MSE-to-the-teacher variant would silently ignore
`temperature` and is a different method, so a regression recipe (or a regression
teacher) with `training.distillation` is refused with an error saying so.

Teacher outputs are turned into logits as follows (the loss only ever sees logits):
  - a framework model's `probabilities` (ONNX, TorchScript): log(clip(p, 1e-7));
  - an MLflow flavour model's output, 2-D [n, classes]: probabilities when every value
    is in [0, 1] and every row sums to 1 (within 1e-3), then log(clip(p, 1e-7));
    anything else (negative values, rows not summing to 1) is taken as logits as is.
    A 1-D output (class labels, e.g. sklearn's `predict`) is refused.

torch, mlflow and onnxruntime are imported inside functions: importing this module
costs only numpy.
"""

from __future__ import annotations

import json
import math
import tempfile
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


def teacher_logits(
    uri: str,
    x: np.ndarray,
    *,
    tracking_uri: str,
    expected_features: Sequence[str] | None = None,
    num_classes: int | None = None,
    expected_classes: Sequence[Any] | None = None,
    raw: dict[str, np.ndarray] | None = None,
) -> np.ndarray:
    """The teacher's logits for the student's feature matrix x: float32 [n, classes].

    uri: `models:/name@alias`, `models:/name/<version>`, `runs:/<id>/<path>` or an
    artifact URI; tracking_uri: the MLflow tracking/registry the names resolve in.
    x: the student's input in the model signature's layout (imputed raw values and
    one-hot columns, as FeaturePipeline.transform gives it; the framework's models
    standardise inside themselves). expected_features: the student's input column
    names (`pipeline.columns`), checked against the teacher's feature_pipeline.json.
    num_classes: the student's output width. expected_classes: the student's class
    labels in index order, checked against (and used to reorder) the teacher's.
    raw: the same rows as request tensors (FeaturePipeline.raw_inputs): a teacher this
    framework exported takes raw columns (framework/signature.py), and runs on these.
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise _error(f"{uri}: the student's feature matrix must be 2-D [rows, features], got shape {x.shape}")
    if expected_features is not None and len(expected_features) != x.shape[1]:
        raise _error(
            f"{uri}: the student's feature matrix has {x.shape[1]} columns but {len(expected_features)} "
            "feature names were given; pass pipeline.columns of the pipeline that made x"
        )
    with tempfile.TemporaryDirectory(prefix="mlops-teacher-") as scratch:
        local = _download(uri, tracking_uri, Path(scratch))
        teacher = _load(uri, local)
        order = _check_classes(teacher, num_classes, expected_classes)
        if teacher.raw_columns is not None:
            outputs = _run_raw(teacher, _check_raw(teacher, raw), len(x))
        else:
            x = _check_inputs(teacher, x, expected_features)
            outputs = _run_batches(teacher, x)
    logits = _to_logits(teacher, outputs, len(x))
    if order is not None:
        logits = logits[:, order]
    if num_classes is not None and logits.shape[1] != num_classes:
        raise _error(
            f"{uri}: the teacher outputs {logits.shape[1]} classes but the student has {num_classes} "
            "(model.num_classes): distil from a teacher trained on the same classes"
        )
    return np.ascontiguousarray(logits, dtype=np.float32)


def recipe_teacher_logits(recipe, pipeline, x: np.ndarray, *, tracking_uri: str, raw=None) -> np.ndarray:
    """`teacher_logits` for a recipe with `training.distillation`: the teacher URI, the
    student's feature names, classes and class count all come from recipe and pipeline.
    tracking_uri: `tracking.tracking_uri(recipe, state_dir)` (the run's `run.uri`)."""
    settings = _settings(recipe)
    _require_classifier(recipe.model.task)
    return teacher_logits(
        settings.teacher,
        x,
        tracking_uri=tracking_uri,
        expected_features=list(pipeline.columns),
        num_classes=recipe.model.num_classes,
        expected_classes=pipeline.classes,
        raw=raw,
    )


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


# --- compatibility --------------------------------------------------------------------
def _check_inputs(teacher: _Teacher, x: np.ndarray, expected: Sequence[str] | None) -> np.ndarray:
    """x in the teacher's column order; errors for other features or another width."""
    uri = teacher.uri
    names = _pipeline_columns(teacher.pipeline) if teacher.pipeline is not None else teacher.input_columns
    if expected is not None and names is not None:
        expected = [str(name) for name in expected]
        if names != expected:
            missing = [n for n in expected if n not in names]
            extra = [n for n in names if n not in expected]
            if missing or extra or sorted(names) != sorted(expected):
                parts = []
                if missing:
                    parts.append(f"the teacher lacks {_names(missing)}")
                if extra:
                    parts.append(f"only the teacher has {_names(extra)}")
                if not parts:
                    parts.append("a column is repeated")
                raise _error(
                    f"{uri}: the teacher was trained on other features than the student ({'; '.join(parts)}): "
                    "train the teacher on the student's data.features (and in_set categories) or pick another teacher"
                )
            # Same columns, another order (data.features listed differently): feed the teacher its layout.
            x = np.ascontiguousarray(x[:, [expected.index(n) for n in names]])
    if teacher.input_width is not None and x.shape[1] != teacher.input_width:
        raise _error(
            f"{uri}: the student's rows have {x.shape[1]} features but the teacher takes {teacher.input_width}: "
            "distil from a teacher trained on the same features"
        )
    return x


def _check_classes(teacher: _Teacher, num_classes: int | None, expected: Sequence[Any] | None) -> list[int] | None:
    """The permutation of the teacher's output columns into the student's class order
    (None: keep), from the pipeline's classes; errors for other classes."""
    classes = None if teacher.pipeline is None else teacher.pipeline.get("classes")
    if classes is None:
        return None
    uri = teacher.uri
    if num_classes is not None and len(classes) != num_classes:
        raise _error(
            f"{uri}: the teacher outputs {len(classes)} classes ({_names(classes)}) but the student has "
            f"{num_classes} (model.num_classes): distil from a teacher trained on the same classes"
        )
    if expected is None:
        return None
    from framework.runtime.training.features import category_key

    theirs = [category_key(c) for c in classes]
    ours = [category_key(c) for c in expected]
    if theirs == ours:
        return None
    if sorted(theirs) != sorted(ours):
        raise _error(
            f"{uri}: the teacher's classes ({_names(classes)}) are not the student's ({_names(list(expected))}): "
            "distil from a teacher trained on the same target"
        )
    return [theirs.index(key) for key in ours]


def _takes_columns(inputs) -> bool:
    """A raw-column graph: one [rows, 1] input per column (a matrix teacher takes one [rows, width])."""
    return len(inputs) > 1 or (len(inputs) == 1 and len(inputs[0].shape) == 2 and inputs[0].shape[1] == 1)


def _check_raw(teacher: _Teacher, raw: dict[str, np.ndarray] | None) -> dict[str, np.ndarray]:
    uri = teacher.uri
    if raw is None:
        raise _error(f"{uri}: the teacher takes raw columns ({_names(teacher.raw_columns)}); pass the student's rows as raw=")
    missing = [c for c in teacher.raw_columns if c not in raw]
    if missing:
        raise _error(
            f"{uri}: the teacher takes column(s) {_names(missing)} that the student's data.features lack: "
            "distil from a teacher trained on the same features"
        )
    return {c: raw[c] for c in teacher.raw_columns}


def _run_raw(teacher: _Teacher, raw: dict[str, np.ndarray], rows: int) -> np.ndarray:
    parts = []
    for start in range(0, max(rows, 1), BATCH):
        batch = {c: values[start:start + BATCH] for c, values in raw.items()}
        try:
            parts.append(_as_matrix(teacher.uri, teacher.run(batch)))
        except MlopsError:
            raise
        except Exception as exc:  # the model's own error: a dtype, a category type
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise _error(f"{teacher.uri}: the teacher failed on the student's rows: {detail}") from None
    return np.concatenate(parts) if len(parts) > 1 else parts[0]


# --- running --------------------------------------------------------------------------
def _run_batches(teacher: _Teacher, x: np.ndarray) -> np.ndarray:
    parts = []
    for start in range(0, max(len(x), 1), BATCH):
        batch = x[start:start + BATCH]
        try:
            out = teacher.run(batch)
        except MlopsError:
            raise
        except Exception as exc:  # the model's own error: a shape, a dtype, a missing column
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise _error(
                f"{teacher.uri}: the teacher failed on the student's rows ({x.shape[1]} features): {detail}: "
                "distil from a teacher trained on the same features"
            ) from None
        parts.append(_as_matrix(teacher.uri, out))
    return np.concatenate(parts) if len(parts) > 1 else parts[0]


def _as_matrix(uri: str, out: Any) -> np.ndarray:
    """A model's output as a float64 [n, k] array (pandas, dicts of one tensor, tensors)."""
    if isinstance(out, dict):
        if ONNX_PROBABILITIES in out:
            out = out[ONNX_PROBABILITIES]
        elif len(out) == 1:
            out = next(iter(out.values()))
        else:
            raise _error(f"{uri}: the teacher returns several outputs ({_names(sorted(out))}); it must return one [rows, classes]")
    if hasattr(out, "detach"):  # a torch tensor from a custom pyfunc
        out = out.detach().cpu().numpy()
    try:
        array = np.asarray(out, dtype=np.float64)
    except (TypeError, ValueError):
        raise _error(f"{uri}: the teacher's output is not numeric ({type(out).__name__}): it must return [rows, classes] scores") from None
    if array.ndim != 2:
        raise _error(
            f"{uri}: the teacher returns shape {array.shape}, not [rows, classes] (class labels or one score per row?): "
            "log a model that outputs class probabilities or logits (sklearn: pyfunc_predict_fn='predict_proba')"
        )
    return array


def _to_logits(teacher: _Teacher, raw: np.ndarray, rows: int) -> np.ndarray:
    uri = teacher.uri
    if raw.shape[0] != rows:
        raise _error(f"{uri}: the teacher returned {raw.shape[0]} rows for {rows}")
    if not np.all(np.isfinite(raw)):
        raise _error(f"{uri}: the teacher's output has NaN or infinite values on the student's rows")
    probabilities = teacher.outputs_probabilities
    if probabilities is None:
        probabilities = _looks_like_probabilities(raw)
    if not probabilities:
        return raw.astype(np.float32)
    # log p = z - logsumexp(z): the logits less a per-row constant, and softmax ignores a
    # per-row constant, also after dividing by T (it becomes c / T). So
    # softmax(log(p) / T) == softmax(z / T): the soft targets are those of the teacher's
    # own logits. The clip only moves probabilities below 1e-7 (saturated float32).
    return np.log(np.clip(raw, PROBABILITY_FLOOR, None)).astype(np.float32)


def _looks_like_probabilities(raw: np.ndarray) -> bool:
    """The documented rule: every value in [0, 1] and every row summing to 1."""
    if raw.size == 0:
        return True
    tolerance = PROBABILITY_TOLERANCE
    in_range = raw.min() >= -tolerance and raw.max() <= 1 + tolerance
    return bool(in_range and np.all(np.abs(raw.sum(axis=1) - 1.0) <= tolerance))


# --- the loss -------------------------------------------------------------------------
def distillation_loss(student_logits, labels, teacher_logits, temperature: float, alpha: float):
    """alpha * KL(softmax(teacher / T) || softmax(student / T)) * T**2 + (1 - alpha) * CE.

    student_logits [n, classes] (with gradients), labels [n] class indices,
    teacher_logits [n, classes] (no gradient flows into them). KL is `batchmean` (the
    mathematically correct mean over rows) and scaled by T**2 so the soft gradients keep
    their magnitude as T grows (Hinton et al.). Returns a scalar tensor.
    """
    import torch.nn.functional as F

    _check_hyper(temperature, alpha)
    if teacher_logits.shape != student_logits.shape:
        raise _error(
            f"teacher logits of shape {tuple(teacher_logits.shape)} do not match the student's "
            f"{tuple(student_logits.shape)}: the teacher must output the student's classes for the same rows"
        )
    teacher_logits = teacher_logits.detach().to(device=student_logits.device, dtype=student_logits.dtype)
    soft_targets = F.softmax(teacher_logits / temperature, dim=1)
    soft_loss = F.kl_div(
        F.log_softmax(student_logits / temperature, dim=1), soft_targets, reduction="batchmean"
    ) * (temperature ** 2)
    hard_loss = F.cross_entropy(student_logits, labels)
    return alpha * soft_loss + (1 - alpha) * hard_loss


def _check_hyper(temperature: float, alpha: float) -> None:
    if not (isinstance(temperature, (int, float)) and math.isfinite(temperature) and temperature > 0):
        raise _error(f"temperature must be a number > 0, got {temperature!r}", "training.distillation.temperature")
    if not (isinstance(alpha, (int, float)) and 0.0 <= alpha <= 1.0):
        raise _error(f"alpha must be between 0 and 1, got {alpha!r}", "training.distillation.alpha")


def _settings(recipe):
    training = getattr(recipe, "training", None)
    settings = getattr(training, "distillation", None)
    if settings is None:
        raise _error("the recipe has no training.distillation", "training.distillation")
    return settings


def _require_classifier(task: str) -> None:
    if task != "classification":
        raise _error(
            f"distillation needs a classifier (soft targets are class distributions) but model.task is {task}: "
            "remove training.distillation or train a classifier",
            "training.distillation",
        )


@dataclass(frozen=True)
class Distiller:
    """The per-batch loss of a training loop that distils.

        distiller = Distiller.from_recipe(recipe)          # None without distillation
        teacher = torch.from_numpy(arrays["teacher_train"])  # recipe_teacher_logits(...)
        loss = distiller(model(x[batch]), y[batch], teacher[batch])

    Validation losses stay plain cross-entropy (comparable across runs with and
    without a teacher); `hard_loss` is that.
    """

    temperature: float = 2.0
    alpha: float = 0.5

    def __post_init__(self) -> None:
        _check_hyper(self.temperature, self.alpha)

    @classmethod
    def from_recipe(cls, recipe) -> Distiller | None:
        """None when the recipe has no training.distillation; an error for regression."""
        training = getattr(recipe, "training", None)
        settings = getattr(training, "distillation", None)
        if settings is None:
            return None
        _require_classifier(recipe.model.task)
        return cls(float(settings.temperature), float(settings.alpha))

    def __call__(self, student_logits, labels, teacher_logits):
        return distillation_loss(student_logits, labels, teacher_logits, self.temperature, self.alpha)

    @staticmethod
    def hard_loss(student_logits, labels):
        import torch.nn.functional as F

        return F.cross_entropy(student_logits, labels)


__all__ = ["teacher_logits", "recipe_teacher_logits", "distillation_loss", "Distiller", "KEY"]
