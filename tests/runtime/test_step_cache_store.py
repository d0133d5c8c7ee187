"""The step cache's store readers against MLflow itself: what the sqlite reader reads
from MLflow's tables and the REST reader from a real `mlflow server` equals what an
MlflowClient says about the same runs, versions and aliases."""

from __future__ import annotations

from pathlib import Path

import pytest

from framework.contracts.fingerprint import TAG
from framework.runtime.stepcache.store import ClientReader, RestReader, SqliteReader
from tests.mlflow_server import unique_name

pytestmark = pytest.mark.slow  # a real mlflow server


def _fill(uri: str, artifacts: Path, name: str) -> dict[str, str]:
    """In experiment and registered model `name`: two finished runs of churn/dev (the newer
    one with fingerprint f2), a nested trial, a failed run and another env's run; versions
    1 (deleted) and 2 of the newer run."""
    from mlflow import MlflowClient

    client = MlflowClient(uri, uri)
    experiment = client.create_experiment(name, artifact_location=artifacts.as_uri() if "sqlite" in uri else None)
    base = {"mlops.recipe": "churn", "mlops.environment": "dev"}
    ids = {}
    for run_name, tags, status in (("old", {TAG: "f1"}, "FINISHED"), ("new", {TAG: "f2"}, "FINISHED"),
                                   ("failed", {TAG: "f3"}, "FAILED"), ("staging", {TAG: "f2", "mlops.environment": "staging"}, "FINISHED")):
        run = client.create_run(experiment, tags={**base, **tags}, run_name=run_name)
        client.log_param(run.info.run_id, "training.epochs", "10" if run_name == "old" else "12")
        client.log_metric(run.info.run_id, "val_accuracy", 0.75)
        client.set_terminated(run.info.run_id, status)
        ids[run_name] = run.info.run_id
    trial = client.create_run(experiment, tags={**base, TAG: "f9", "mlflow.parentRunId": ids["new"]})
    client.set_terminated(trial.info.run_id, "FINISHED")
    client.create_registered_model(name)
    for _ in range(2):
        client.create_model_version(name, f"runs:/{ids['new']}/model", run_id=ids["new"])
    client.delete_model_version(name, "2")
    client.set_registered_model_alias(name, "champion", "1")
    return ids


@pytest.fixture(params=["sqlite", "server"])
def store(request, tmp_path, monkeypatch):
    """(reader, uri, run ids, name): the server is shared, so the experiment and model have
    a name of this test's own (the sqlite store is fresh: same name, for symmetry)."""
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    name = unique_name("churn")
    if request.param == "sqlite":
        db = tmp_path / "mlflow.db"
        uri = f"sqlite:///{db}"
        return SqliteReader(db), uri, _fill(uri, tmp_path / "artifacts", name), name
    url = request.getfixturevalue("mlflow_server")
    return RestReader(url), url, _fill(url, tmp_path, name), name


def test_the_reader_sees_what_mlflow_says(store):
    reader, uri, ids, name = store
    for candidate in (reader, ClientReader(uri)):
        newest = candidate.last_run(name, "churn", "dev")
        assert newest.run_id == ids["new"]  # not the trial, the failed run or staging's
        assert newest.params == {"training.epochs": "12"} and newest.metrics == {"val_accuracy": 0.75}
        assert newest.tags[TAG] == "f2" and newest.artifact_uri
        assert candidate.last_run(name, "churn", "dev", "f1").run_id == ids["old"]
        assert candidate.last_run(name, "churn", "dev", "f3") is None  # failed
        assert candidate.last_run(name, "churn", "dev", "f9") is None  # nested
        assert candidate.last_run(unique_name("other"), "churn", "dev") is None  # no such experiment
        version, source = candidate.version_of_run(name, ids["new"])
        assert version == "1" and ids["new"] in source  # 2 was deleted
        assert candidate.version_of_run(name, ids["old"]) is None
        assert candidate.aliases(name) == {"champion": "1"} and candidate.aliases(unique_name("nothing")) == {}


def test_a_missing_store_is_no_store(tmp_path):
    reader = SqliteReader(tmp_path / "mlflow.db")
    assert not reader.exists() and not (tmp_path / "mlflow.db").exists()
