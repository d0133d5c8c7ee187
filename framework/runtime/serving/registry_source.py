"""A model repository filled from the MLflow registry, for hosts without one on disk.

`mlops apply` fills `.mlops/model_repository/` only for Triton recipes; a Ray Serve
recipe (and a Ray Serve replica on a cluster) serves the registered versions instead:
those the `champion` and `candidate` aliases point at, downloaded into
`<state_dir>/serving/model_repository/<model>/<version>/<model file>`. The versions
already there are not fetched again (a registered version's files never change).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from framework.contracts.registry import SERVED_ALIASES
from framework.errors import MlopsError, Problem


def registry_versions(recipe, state_dir: Path) -> dict[str, str]:
    """{alias: version} of the recipe's registered model (aliases not set are left out)."""
    from framework.runtime import tracking

    uri = tracking.tracking_uri(recipe, state_dir)
    found = {}
    for alias in SERVED_ALIASES:
        version = tracking.alias_version(recipe.registered_model, alias, uri=uri)
        if version is not None:
            found[alias] = version
    return found


def fill_from_registry(recipe, state_dir: Path, model_name: str, filename: str, versions: list[str] | None = None) -> Path:
    """Download the champion's and candidate's model files (or exactly `versions`);
    returns the repository root."""
    from framework.runtime import tracking

    uri = tracking.tracking_uri(recipe, state_dir)
    missing = (
        f"no model '{model_name}' in {Path(state_dir) / 'model_repository'} and no version of "
        f"'{recipe.registered_model}' has alias champion or candidate in {uri}: run `mlops apply {recipe.name}` first"
    )
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        raise MlopsError([Problem(None, "serving", missing)])  # no store yet: don't create one

    with server_errors(uri, "serving"):
        versions = sorted(set(versions or registry_versions(recipe, state_dir).values()), key=int)
    if not versions:
        raise MlopsError([Problem(None, "serving", missing)])
    root = Path(state_dir) / "serving" / "model_repository"
    with server_errors(uri, "serving"):
        client = tracking.client(uri)
        for version in versions:
            fetch_version(client, uri, recipe.registered_model, version, filename, root / model_name / version)
    return root


def fetch_version(client, uri: str, registered_model: str, version: str, filename: str, version_dir: Path) -> Path:
    """`<version_dir>/<filename>` from a registered version's artifacts, unless already
    there (a version's files never change); written under a hidden name, then renamed,
    so a reader never sees half a model."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no bar in CLI output
    from mlflow.artifacts import download_artifacts

    target = Path(version_dir) / filename
    if target.is_file():
        return target
    source = client.get_model_version(registered_model, version).source
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(download_artifacts(artifact_uri=source, dst_path=tmp, tracking_uri=uri))
        found = next(iter(sorted(local.rglob(filename))), None) if local.is_dir() else (local if local.name == filename else None)
        if found is None:
            raise MlopsError([Problem(None, "serving", f"version {version} of '{registered_model}' has no {filename} ({source})")])
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{filename}.partial")
        shutil.copyfile(found, partial)
        partial.replace(target)
    return target


@contextlib.contextmanager
def server_errors(uri: str, key: str) -> Iterator[None]:
    """MLflow's failures to talk to the tracking server as one error line under `key`
    (an unreachable server, refused credentials); MLflow's own exception would be a
    traceback in the pod's or the command's output."""
    try:
        yield
    except Exception as error:
        mlflow_errors = sys.modules.get("mlflow.exceptions")  # not loaded: not MLflow's error (no store, no mlflow)
        if mlflow_errors is None or not isinstance(error, mlflow_errors.MlflowException):
            raise
        import requests

        chain, link = [], error  # MLflow raises its error while handling requests' one
        while link is not None:
            chain.append(link)
            link = link.__cause__ or link.__context__
        if any(isinstance(link, requests.RequestException) for link in chain):
            reason = getattr(chain[-1], "strerror", None) or chain[-1]  # "Connection refused", not the URL again
            message = f"cannot reach the MLflow server at {uri}: {reason}"
        elif error.error_code in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
            message = (f"the MLflow server at {uri} refused the credentials ({error.error_code}): "
                       "set MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (deploy.secrets)")
        else:
            raise
        raise MlopsError([Problem(None, key, message)]) from None
