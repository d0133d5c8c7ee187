"""Reading finished runs and registry entries for the step cache, without importing
mlflow when the store allows it: importing mlflow and opening its store costs 2-4 s,
more than a cached re-apply may take.

- The embedded sqlite store is read with sqlite3, read-only, from MLflow's own tables
  (runs, tags, params, latest_metrics, model_versions, registered_model_aliases).
- An MLflow server (http/https) through its REST API (/api/2.0/mlflow/...), with
  MLflow's token or basic-auth variables.
- Any other store (a database URI, Databricks) through an MlflowClient.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from framework.contracts.fingerprint import TAG

RECIPE_TAG, ENV_TAG, PARENT_TAG = "mlops.recipe", "mlops.environment", "mlflow.parentRunId"
DELETED_STAGE = "Deleted_Internal"  # MLflow's mark of a deleted model version


@dataclass(frozen=True)
class FinishedRun:
    run_id: str
    artifact_uri: str
    tags: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)


class StoreUnreadable(Exception):
    """The store could not be read: the cache steps aside and the job runs."""


def reader_for(uri: str):
    if uri.startswith("sqlite:///"):
        return SqliteReader(Path(uri.removeprefix("sqlite:///")))
    if uri.startswith(("http://", "https://")):
        return RestReader(uri)
    return ClientReader(uri)


class SqliteReader:
    def __init__(self, db: Path):
        self.db = db

    def exists(self) -> bool:
        return self.db.is_file()

    def _query(self, sql: str, *args) -> list[tuple]:
        try:
            with sqlite3.connect(f"{self.db.as_uri()}?mode=ro", uri=True, timeout=10) as db:
                return db.execute(sql, args).fetchall()
        except sqlite3.Error as error:
            raise StoreUnreadable(f"{self.db}: {error}") from error

    def last_run(self, experiment: str, recipe: str, env: str, fingerprint: str | None = None) -> FinishedRun | None:
        """The newest finished top-level run of recipe/env in experiment that recorded
        fingerprints (the given one, when not None)."""
        rows = self._query(
            "SELECT r.run_uuid, r.artifact_uri FROM runs r"
            " JOIN experiments e ON e.experiment_id = r.experiment_id AND e.name = ? AND e.lifecycle_stage = 'active'"
            " JOIN tags a ON a.run_uuid = r.run_uuid AND a.key = ? AND a.value = ?"
            " JOIN tags b ON b.run_uuid = r.run_uuid AND b.key = ? AND b.value = ?"
            " JOIN tags f ON f.run_uuid = r.run_uuid AND f.key = ? AND (? IS NULL OR f.value = ?)"
            " WHERE r.status = 'FINISHED' AND r.lifecycle_stage = 'active'"
            " AND NOT EXISTS (SELECT 1 FROM tags p WHERE p.run_uuid = r.run_uuid AND p.key = ?)"
            " ORDER BY r.end_time DESC LIMIT 1",
            experiment, RECIPE_TAG, recipe, ENV_TAG, env, TAG, fingerprint, fingerprint, PARENT_TAG)
        if not rows:
            return None
        run_id, artifact_uri = rows[0]
        return FinishedRun(
            run_id, artifact_uri,
            dict(self._query("SELECT key, value FROM tags WHERE run_uuid = ?", run_id)),
            dict(self._query("SELECT key, value FROM params WHERE run_uuid = ?", run_id)),
            {k: v for k, v, nan in self._query("SELECT key, value, is_nan FROM latest_metrics WHERE run_uuid = ?",
                                                run_id) if not nan})

    def version_of_run(self, model: str, run_id: str) -> tuple[str, str] | None:
        """(version, source) of the newest ready version of model registered from run_id."""
        rows = self._query(
            "SELECT version, source FROM model_versions WHERE name = ? AND run_id = ? AND status = 'READY'"
            " AND current_stage != ? ORDER BY version DESC LIMIT 1", model, run_id, DELETED_STAGE)
        return (str(rows[0][0]), rows[0][1]) if rows else None

    def aliases(self, model: str) -> dict[str, str]:
        return {alias: str(version) for alias, version in
                self._query("SELECT alias, version FROM registered_model_aliases WHERE name = ?", model)}


class RestReader:
    """MLflow's REST API (the same calls MlflowClient makes to a server)."""

    def __init__(self, uri: str):
        self.base = uri.rstrip("/")

    def exists(self) -> bool:
        return True

    def _call(self, path: str, query: dict | None = None, body: dict | None = None) -> dict:
        url = f"{self.base}/api/2.0/mlflow/{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        request = urllib.request.Request(url, data=json.dumps(body).encode() if body is not None else None,
                                         headers={"Content-Type": "application/json", **_auth()})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return {}
            raise StoreUnreadable(f"{url}: HTTP {error.code}") from error
        except (OSError, ValueError) as error:
            raise StoreUnreadable(f"{url}: {error}") from error

    def last_run(self, experiment: str, recipe: str, env: str, fingerprint: str | None = None) -> FinishedRun | None:
        found = self._call("experiments/get-by-name", {"experiment_name": experiment}).get("experiment")
        if not found or found.get("lifecycle_stage") != "active":
            return None
        condition = f"tags.`{TAG}` = '{fingerprint}'" if fingerprint else f"tags.`{TAG}` != ''"
        query = (f"tags.`{RECIPE_TAG}` = '{_quote(recipe)}' and tags.`{ENV_TAG}` = '{_quote(env)}' and {condition} "
                 "and attributes.status = 'FINISHED'")
        body = {"experiment_ids": [found["experiment_id"]], "filter": query, "run_view_type": "ACTIVE_ONLY",
                "max_results": 50, "order_by": ["attributes.end_time DESC"]}
        for run in self._call("runs/search", body=body).get("runs", []):
            tags = {t["key"]: t["value"] for t in run["data"].get("tags", [])}
            if PARENT_TAG in tags:
                continue
            return FinishedRun(run["info"]["run_id"], run["info"]["artifact_uri"], tags,
                               {p["key"]: p["value"] for p in run["data"].get("params", [])},
                               {m["key"]: float(m["value"]) for m in run["data"].get("metrics", [])})
        return None

    def version_of_run(self, model: str, run_id: str) -> tuple[str, str] | None:
        found = self._call("model-versions/search",
                           {"filter": f"name = '{_quote(model)}' and run_id = '{_quote(run_id)}'"})
        ready = [v for v in found.get("model_versions", []) if v.get("status") == "READY"]
        if not ready:
            return None
        newest = max(ready, key=lambda v: int(v["version"]))
        return str(newest["version"]), newest.get("source", "")

    def aliases(self, model: str) -> dict[str, str]:
        found = self._call("registered-models/get", {"name": model}).get("registered_model", {})
        return {a["alias"]: str(a["version"]) for a in found.get("aliases", [])}


class ClientReader:
    """Any other store, through mlflow itself."""

    def __init__(self, uri: str):
        self.uri = uri

    def exists(self) -> bool:
        return True

    def _client(self):
        from framework.runtime.tracking import client

        return client(self.uri)

    def last_run(self, experiment: str, recipe: str, env: str, fingerprint: str | None = None) -> FinishedRun | None:
        client = self._client()
        found = client.get_experiment_by_name(experiment)
        if found is None or found.lifecycle_stage != "active":
            return None
        condition = f"tags.`{TAG}` = '{fingerprint}'" if fingerprint else f"tags.`{TAG}` != ''"
        runs = client.search_runs([found.experiment_id], f"tags.`{RECIPE_TAG}` = '{_quote(recipe)}' and "
                                  f"tags.`{ENV_TAG}` = '{_quote(env)}' and {condition} and attributes.status = 'FINISHED'",
                                  max_results=50, order_by=["attributes.end_time DESC"])
        for run in runs:
            if PARENT_TAG not in run.data.tags:
                return FinishedRun(run.info.run_id, run.info.artifact_uri, dict(run.data.tags), dict(run.data.params),
                                   dict(run.data.metrics))
        return None

    def version_of_run(self, model: str, run_id: str) -> tuple[str, str] | None:
        versions = self._client().search_model_versions(f"name = '{_quote(model)}' and run_id = '{_quote(run_id)}'")
        ready = [v for v in versions if v.status == "READY"]
        if not ready:
            return None
        newest = max(ready, key=lambda v: int(v.version))
        return str(newest.version), newest.source

    def aliases(self, model: str) -> dict[str, str]:
        from mlflow.exceptions import MlflowException

        try:
            return {k: str(v) for k, v in self._client().get_registered_model(model).aliases.items()}
        except MlflowException as error:
            if error.error_code == "RESOURCE_DOES_NOT_EXIST":
                return {}
            raise


def _quote(value: str) -> str:
    return value.replace("'", "\\'")


def _auth() -> dict[str, str]:
    """The headers MLflow's client sends: MLFLOW_TRACKING_TOKEN, else basic auth."""
    if os.environ.get("MLFLOW_TRACKING_TOKEN"):
        return {"Authorization": f"Bearer {os.environ['MLFLOW_TRACKING_TOKEN']}"}
    user, password = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if user and password:
        return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}
    return {}
