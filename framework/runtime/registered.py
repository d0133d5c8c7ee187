"""A registered model version, opened from the MLflow registry to score rows offline:
its served model file and the feature pipeline its run recorded (so rows are encoded
exactly as in training). `mlops evaluate` re-scores a version with it, and `mlops smoke`
compares a deployed endpoint's answers with it.

Files are cached under `<state_dir>/registry/<model>/<version>/`: a registered
version's files never change.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from framework.errors import MlopsError, Problem

PIPELINE_ARTIFACT = "model/feature_pipeline.json"  # logged by the training run (train.py)
BATCH_ROWS = 8192


@dataclass
class RegisteredVersion:
    name: str  # registered model
    version: str
    run_id: str
    uri: str  # tracking URI
    model_path: Path  # the served file (model.onnx or model.pt)
    pipeline: Any  # framework.runtime.training.features.FeaturePipeline
    config: Any  # framework.contracts.triton.ModelConfig
    tags: dict[str, str] = field(default_factory=dict)
    _runner: Any = None

    def outputs(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """The model's scores [rows, width] (probabilities or prediction) on request tensors."""
        return run_model(self.runner(), self.config, inputs)

    def predict(self, table) -> np.ndarray:
        """The model's scores on raw rows (data.source's columns), sent as a client would."""
        return self.outputs(self.pipeline.raw_inputs(table))

    def runner(self):
        if self._runner is None:
            self._runner = model_runner(self.model_path, self.config)
        return self._runner


def model_runner(path: Path, config):
    """ONNX Runtime or TorchScript, by the file's suffix, as the serving app loads it."""
    if Path(path).suffix == ".onnx":
        from framework.runtime.serving.repository import OnnxRunner

        return OnnxRunner(Path(path), config)
    from framework.runtime.serving.repository import TorchScriptRunner

    return TorchScriptRunner(Path(path), config)


def run_model(runner, config, inputs: dict[str, np.ndarray]) -> np.ndarray:
    """The scores [rows, width] (the first output) of `runner` on request tensors
    ({input: [rows, ...]}, the signature's raw columns), in batches."""
    output = config.output[0].name
    rows = len(next(iter(inputs.values()))) if inputs else 0
    if not rows:
        return np.zeros((0, 1), dtype=np.float32)
    parts = [
        runner.run({name: values[i:i + BATCH_ROWS] for name, values in inputs.items()})[output]
        for i in range(0, rows, BATCH_ROWS)
    ]
    return np.concatenate(parts).reshape(rows, -1)


def unknown_version(recipe, version: str, uri: str, client) -> MlopsError:
    from mlflow.exceptions import MlflowException

    try:
        known = sorted((v.version for v in client.search_model_versions(f"name='{recipe.registered_model}'")), key=int)
    except MlflowException:
        known = []
    have = f"versions: {', '.join(map(str, known))}" if known else "it has no versions"
    return MlopsError([Problem(None, "--version", f"no version {version} of '{recipe.registered_model}' in {uri}; {have}")])


def model_version(recipe, version: str, uri: str):
    """The registry's ModelVersion; one `--version` error line when there is none."""
    from mlflow.exceptions import MlflowException

    from framework.runtime import tracking

    client = tracking.client(uri)
    if not str(version).isdigit():
        raise MlopsError([Problem(None, "--version", f"'{version}' is not a version number (1, 2, ...)")])
    try:
        return client, client.get_model_version(recipe.registered_model, str(version))
    except MlflowException as error:
        if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            raise unknown_version(recipe, version, uri, client) from None
        raise


def tracking_uri_or_fail(recipe, state_dir: Path) -> str:
    """The recipe's tracking URI; the embedded store must already exist (reading never creates one)."""
    from framework.runtime import tracking

    uri = tracking.tracking_uri(recipe, state_dir)
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        raise MlopsError([Problem(None, "tracking.uri", f"no MLflow store at {uri.removeprefix('sqlite:///')}: "
                                  f"nothing is registered yet (run `mlops apply {recipe.name}`), or set tracking.uri")])
    return uri


def open_version(recipe, state_dir: Path, version: str) -> RegisteredVersion:
    """Download (once) and open a registered version of the recipe's model."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from mlflow.artifacts import download_artifacts
    from mlflow.exceptions import MlflowException

    from framework.contracts.triton import model_config
    from framework.runtime.training.features import FeaturePipeline
    from framework.runtime.serving.registry_source import fetch_version

    uri = tracking_uri_or_fail(recipe, state_dir)
    client, found = model_version(recipe, version, uri)
    version = str(found.version)
    config = model_config(recipe)
    folder = Path(state_dir).resolve() / "registry" / recipe.registered_model / version
    model_path = fetch_version(client, uri, recipe.registered_model, version, config.default_model_filename, folder)
    pipeline_file = folder / Path(PIPELINE_ARTIFACT).name
    if not pipeline_file.is_file():
        try:
            local = download_artifacts(run_id=found.run_id, artifact_path=PIPELINE_ARTIFACT, dst_path=str(folder / ".download"),
                                       tracking_uri=uri)
        except (MlflowException, OSError) as error:
            message = (f"version {version} of '{recipe.registered_model}' has no {PIPELINE_ARTIFACT} in run {found.run_id} "
                       f"({str(error).splitlines()[0] if str(error) else type(error).__name__}): it was not registered by mlops")
            raise MlopsError([Problem(None, "--version", message)]) from None
        Path(local).replace(pipeline_file)
    pipeline = FeaturePipeline.from_dict(json.loads(pipeline_file.read_text(encoding="utf-8")))
    return RegisteredVersion(recipe.registered_model, version, found.run_id, uri, model_path, pipeline, config,
                             dict(found.tags))


def registered_since(recipe, state_dir: Path, since_ms: int) -> dict | None:
    """The newest version of the recipe's model registered at or after `since_ms` by a run
    of this very recipe (tag mlops.recipe_hash): what a training job on a cluster,
    which prints to logs this process cannot read, registered. None when there is none."""
    from framework.runtime import tracking

    uri = tracking.tracking_uri(recipe, state_dir)
    wanted = tracking.short_hash(tracking.resolved_text(recipe))
    found = [v for v in tracking.client(uri).search_model_versions(f"name='{recipe.registered_model}'")
             if int(v.creation_timestamp or 0) >= since_ms and v.tags.get(tracking.TAG_HASH) == wanted]
    if not found:
        return None
    newest = max(found, key=lambda v: int(v.version))
    return {"run_id": newest.run_id, "model_version": str(newest.version), "tracking_uri": uri}


__all__ = ["RegisteredVersion", "registered_since", "open_version", "model_version", "model_runner", "run_model", "tracking_uri_or_fail",
           "unknown_version"]
