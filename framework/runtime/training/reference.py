"""The drift reference: what a model version was trained on, recorded by apply.

At registration apply logs, as artifacts of the model version's MLflow run under
`reference/`:
  reference.parquet  a seeded sample (at most REFERENCE_ROWS) of the training split:
                     the raw feature columns, the target, and the model's outputs on
                     those rows named as the request log names them (`probabilities_1`)
  schema.json        the feature schema: numeric and categorical features (with their
                     categories), target, task, classes, output columns, the training
                     file's columns, row counts, and the feature pipeline (to_dict), so
                     monitor can encode a current file and run the model on it
and tags the version `mlops.reference` with the artifact URI. `mlops monitor` finds the
reference of the version the `champion` alias points at.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from framework.contracts.registry import ALIAS_CHAMPION
from framework.errors import MlopsError, Problem
from framework.runtime.training.features import category_key

REFERENCE_ROWS = 100_000
ARTIFACT_DIR = "reference"
FRAME_FILE = "reference.parquet"
SCHEMA_FILE = "schema.json"
TAG = "mlops.reference"
FORMAT_VERSION = 1


@dataclass
class Reference:
    frame: pd.DataFrame
    schema: dict[str, Any]
    version: str | None = None  # the model version it belongs to
    run_id: str | None = None

    @property
    def numeric(self) -> list[str]:
        return list(self.schema["numeric"])

    @property
    def categorical(self) -> list[str]:
        return list(self.schema["categorical"])

    @property
    def prediction(self) -> list[str]:
        return list(self.schema["prediction"])

    @property
    def features(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    def pipeline(self):
        from framework.runtime.training.features import FeaturePipeline

        return FeaturePipeline.from_dict(self.schema["pipeline"])


def output_columns(recipe) -> list[str]:
    """The request log's names of the model's output columns (request_log.py)."""
    from framework.signature import model_signature

    output = model_signature(recipe).scores  # the label output is derived from these
    return [output.name] if output.width == 1 else [f"{output.name}_{j}" for j in range(output.width)]


def prediction_columns(recipe) -> list[str]:
    """The outputs whose drift is the prediction drift: a binary classifier's positive
    class, every class of a wider one, a regressor's value."""
    columns = output_columns(recipe)
    return columns[1:] if len(columns) == 2 else columns


def source_columns(recipe, root: Path) -> list[str]:
    """The columns of the training file (a current file may carry the same ones)."""
    data = recipe.data
    path = Path(data.source.uri)
    path = path if path.is_absolute() else Path(root) / path
    try:
        if data.source.format == "parquet":
            import pyarrow.parquet as pq

            return list(pq.read_schema(path).names)
        return list(pd.read_csv(path, nrows=0).columns)
    except (OSError, ValueError):  # a remote source: the recipe's columns only
        return [*data.features, data.target, *getattr(data, "extra_columns", [])]


def build(recipe, pipeline, train_df: pd.DataFrame, outputs_fn, root: Path, seed: int = 0) -> tuple[pd.DataFrame, dict]:
    """(reference frame, schema); `outputs_fn(x)` runs the trained model on encoded rows
    (the same scores the served graph gives on the raw columns: export's parity)."""
    sample = train_df
    if len(train_df) > REFERENCE_ROWS:
        sample = train_df.sample(n=REFERENCE_ROWS, random_state=seed).reset_index(drop=True)
    features = [*pipeline.numeric, *pipeline.categorical]
    frame = sample[[*features, pipeline.target]].copy()
    outputs = np.asarray(outputs_fn(pipeline.transform(sample)), dtype=np.float32).reshape(len(sample), -1)
    names = output_columns(recipe)
    for j, name in enumerate(names):
        frame[name] = outputs[:, j]
    schema = {
        "format_version": FORMAT_VERSION,
        "numeric": list(pipeline.numeric),
        "categorical": {name: [category_key(c) for c in values] for name, values in pipeline.categorical.items()},
        "target": pipeline.target,
        "task": pipeline.task,
        "outputs": names,
        "prediction": prediction_columns(recipe),
        "source_columns": source_columns(recipe, root),
        "rows": int(len(frame)),
        "training_rows": int(len(train_df)),
        "pipeline": pipeline.to_dict(),
    }
    return frame, schema


def log(run, frame: pd.DataFrame, schema: dict) -> None:
    """Both files into the run's `reference/` artifacts."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / FRAME_FILE
        _categories_as_text(frame, schema).to_parquet(path, index=False)
        run.log_artifact_file(path, ARTIFACT_DIR)
    run.log_dict(schema, f"{ARTIFACT_DIR}/{SCHEMA_FILE}")


def _categories_as_text(frame: pd.DataFrame, schema: dict) -> pd.DataFrame:
    """Categorical columns as strings (nulls kept): parquet needs one type per column."""
    out = frame.copy()
    for name in schema["categorical"]:
        out[name] = out[name].map(lambda v: None if v is None or (isinstance(v, float) and np.isnan(v)) else category_key(v))
    return out


def load(recipe, state_dir: Path, alias: str = ALIAS_CHAMPION) -> Reference:
    """The reference of the version `alias` points at (one error line when there is none)."""
    from framework.runtime import tracking
    from framework.runtime.tracking import aliases

    uri = tracking.tracking_uri(recipe, state_dir)
    version = aliases(recipe.registered_model, uri=uri).get(alias)
    if version is None:
        message = (f"no version of '{recipe.registered_model}' has alias {alias} in {uri}: "
                   f"run `mlops apply {recipe.name}` first (it records the drift reference)")
        raise MlopsError([Problem(None, "monitoring.drift", message)])
    client = tracking.client(uri)
    model_version = client.get_model_version(recipe.registered_model, version)
    run_id = model_version.run_id
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no bar in CLI output
    from mlflow.artifacts import download_artifacts
    from mlflow.exceptions import MlflowException

    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = Path(download_artifacts(run_id=run_id, artifact_path=ARTIFACT_DIR, dst_path=tmp, tracking_uri=uri))
            schema = json.loads((local / SCHEMA_FILE).read_text(encoding="utf-8"))
            frame = pd.read_parquet(local / FRAME_FILE)
        except (MlflowException, OSError, ValueError):
            message = (f"version {version} of '{recipe.registered_model}' has no drift reference (run {run_id} has no "
                       f"{ARTIFACT_DIR}/ artifacts); apply it again with this mlops to record one")
            raise MlopsError([Problem(None, "monitoring.drift", message)]) from None
    if schema.get("format_version") != FORMAT_VERSION:
        raise MlopsError([Problem(None, "monitoring.drift", f"reference format {schema.get('format_version')!r} of version {version} is not supported")])
    return Reference(frame, schema, version, run_id)


__all__ = ["Reference", "build", "log", "load", "output_columns", "prediction_columns", "REFERENCE_ROWS", "TAG"]
