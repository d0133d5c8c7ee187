"""MLflow tracking and registry for the runtime.

The embedded default is a sqlite store at `<state_dir>/mlflow.db` with artifacts under
`<state_dir>/mlartifacts`; `tracking.uri` points elsewhere. Everything goes through an
`MlflowClient` bound to an explicit URI, never `mlflow.set_tracking_uri` / the fluent
active-run stack: that global state would make two trackers in one process (HPO
trials, tests) write into each other's runs. mlflow is imported inside functions so
importing this module stays cheap for the CLI.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from framework.contracts.params import flatten, param_text
from framework.contracts.registry import ALIAS_CANDIDATE, ALIAS_CHAMPION, ROLLOUT_ALIASES
from framework.contracts.resolved import resolved_recipe_yaml
from framework.errors import MlopsError
from framework.runtime.wandb_mirror import mirror_for

DB_FILE = "mlflow.db"
ARTIFACTS_DIR = "mlartifacts"
SHORT_HASH = 12

# Run tags (mlflow.* ones are MLflow's own: the UI shows run names and nesting from them).
TAG_RECIPE = "mlops.recipe"
TAG_ENV = "mlops.environment"
TAG_HASH = "mlops.recipe_hash"
TAG_COMMIT = "mlops.git_commit"
# The submitter's HEAD, handed to a cluster job: its upload of the project has no .git.
COMMIT_ENV = "MLOPS_GIT_COMMIT"
_COMMIT = re.compile(r"[0-9a-f]{40,64}")
TAG_PARENT = "mlflow.parentRunId"
TAG_RUN_NAME = "mlflow.runName"

# Schemes whose server chooses the artifact store; everything else (sqlite, files,
# other databases) would default to ./mlruns in the working directory.
_SERVER_SCHEMES = ("http", "https", "databricks", "databricks-uc", "uc")


# --- locations and identities ---------------------------------------------------------
def tracking_uri(recipe, state_dir: Path) -> str:
    """`tracking.uri`, else the embedded sqlite store under the state dir."""
    if recipe.tracking.uri:
        return recipe.tracking.uri
    return f"sqlite:///{Path(state_dir).resolve() / DB_FILE}"


def artifact_root(state_dir: Path) -> str:
    """The experiments' artifact location (a file URI) under the state dir."""
    return (Path(state_dir).resolve() / ARTIFACTS_DIR).as_uri()


def recipe_hash(resolved_text: str) -> str:
    """sha256 of the resolved recipe text (`recipe.resolved.yaml`), hex."""
    return hashlib.sha256(resolved_text.encode("utf-8")).hexdigest()


def short_hash(resolved_text: str) -> str:
    """The 12-character form used in tags."""
    return recipe_hash(resolved_text)[:SHORT_HASH]


def resolved_text(recipe) -> str:
    """The bytes `generate` writes as recipe.resolved.yaml, so hashes match the file."""
    return resolved_recipe_yaml(recipe)


def git_commit(root: Path | None) -> str | None:
    """HEAD of the repository at root; None outside one, without git, or on any error."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=root, capture_output=True, text=True, timeout=10, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = done.stdout.strip()
    return commit if done.returncode == 0 and _COMMIT.fullmatch(commit) else None


def _commit_from_env() -> str | None:
    commit = os.environ.get(COMMIT_ENV, "").strip()
    return commit if _COMMIT.fullmatch(commit) else None


# --- params ---------------------------------------------------------------------------
def flatten_params(recipe) -> dict[str, str]:
    """The resolved recipe as MLflow params (framework.contracts.params.flatten)."""
    return flatten(recipe.model_dump(mode="json"))


def _chunks(items: list, size: int) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


# --- client and experiment ------------------------------------------------------------
def client(uri: str):
    """An MlflowClient for uri (tracking and registry both).

    For a sqlite store the first client builds the schema (alembic migrations, ~2 s);
    two processes doing that at once on a fresh file collide ("table already
    exists"), so the first touch is serialised by a lock beside the database
    (`<db dir>/locks/`, i.e. the state dir's locks/ for the embedded store).
    """
    from mlflow import MlflowClient

    from framework.runtime.locks import blocking_lock

    if not uri.startswith("sqlite:///"):
        return MlflowClient(tracking_uri=uri, registry_uri=uri)
    db = Path(uri.removeprefix("sqlite:///"))
    db.parent.mkdir(parents=True, exist_ok=True)
    with blocking_lock(db.parent / "locks" / f"{db.name}.init.lock"):
        # The tracking and the registry store each check/migrate the schema when first
        # built; touch both inside the lock. MLflow caches stores per URI, so later
        # clients in this process skip this.
        mlflow_client = MlflowClient(tracking_uri=uri, registry_uri=uri)
        mlflow_client.search_experiments(max_results=1)
        mlflow_client.search_registered_models(max_results=1)
    return mlflow_client


def _uses_server_artifacts(uri: str) -> bool:
    return uri.split(":", 1)[0].lower() in _SERVER_SCHEMES


def ensure_experiment(mlflow_client, name: str, uri: str, state_dir: Path) -> str:
    """The experiment's id, creating it (artifacts under the state dir) when missing and
    restoring it when it was deleted (MLflow keeps the name reserved otherwise)."""
    from mlflow.exceptions import MlflowException

    experiment = mlflow_client.get_experiment_by_name(name)
    if experiment is None:
        location = None if _uses_server_artifacts(uri) else artifact_root(state_dir)
        if location:
            Path(state_dir, ARTIFACTS_DIR).mkdir(parents=True, exist_ok=True)
        try:
            return mlflow_client.create_experiment(name, artifact_location=location)
        except MlflowException as error:
            if error.error_code != "RESOURCE_ALREADY_EXISTS":  # lost a race: use theirs
                raise
            experiment = mlflow_client.get_experiment_by_name(name)
            if experiment is None:
                raise
    if experiment.lifecycle_stage == "deleted":
        mlflow_client.restore_experiment(experiment.experiment_id)
    return experiment.experiment_id


# --- runs -----------------------------------------------------------------------------
class Tracker:
    """One MLflow run of a recipe, as a context manager.

    On enter: the run starts in the recipe's experiment, tagged with recipe, env, recipe
    hash and git commit, with the flattened recipe as params and the resolved recipe as
    the artifact `recipe.resolved.yaml`. On exit: FINISHED, FAILED when the block raised,
    KILLED on Ctrl-C (the exception propagates). `child(name)` gives a nested run (HPO trials).
    Params, metrics and the registered version go to `mirror` too (W&B: wandb_mirror.py).
    """

    def __init__(
        self,
        recipe,
        state_dir: Path,
        *,
        resolved: str | None = None,
        root: Path | None = None,
        run_name: str | None = None,
    ):
        self.recipe = recipe
        self.state_dir = Path(state_dir).resolve()
        self.uri = tracking_uri(recipe, self.state_dir)
        self.resolved = resolved if resolved is not None else resolved_text(recipe)
        self.recipe_hash = recipe_hash(self.resolved)
        self.run_name = run_name
        self.tags = {
            TAG_RECIPE: recipe.name,
            TAG_ENV: recipe.environment,
            TAG_HASH: self.recipe_hash[:SHORT_HASH],
        }
        commit = _commit_from_env() or git_commit(root)
        if commit:
            self.tags[TAG_COMMIT] = commit
        self.parent: Tracker | None = None
        self.run_id: str | None = None
        self.experiment_id: str | None = None
        self.artifact_uri: str | None = None
        self._client = None
        self.mirror = mirror_for(recipe, self.state_dir)  # W&B when tracking.backends lists wandb

    # A nested tracker shares its parent's client and experiment and logs no recipe.
    @classmethod
    def _nested(cls, parent: "Tracker", name: str) -> "Tracker":
        child = cls.__new__(cls)
        child.__dict__.update(
            recipe=parent.recipe, state_dir=parent.state_dir, uri=parent.uri,
            resolved=parent.resolved, recipe_hash=parent.recipe_hash, run_name=name,
            tags={**parent.tags, TAG_PARENT: parent.id}, parent=parent, run_id=None,
            experiment_id=parent.experiment_id, artifact_uri=None, _client=parent._client,
            mirror=parent.mirror.child(name),
        )
        return child

    @property
    def client(self):
        if self._client is None:
            self._client = client(self.uri)
        return self._client

    @property
    def id(self) -> str:
        if self.run_id is None:
            raise MlopsError("the MLflow run has not started (use the Tracker in a `with` block)")
        return self.run_id

    def start(self) -> "Tracker":
        self.mirror.check()  # a missing extra or API key stops us before any run exists
        if self.experiment_id is None:
            self.experiment_id = ensure_experiment(self.client, self.recipe.experiment, self.uri, self.state_dir)
        run = self.client.create_run(self.experiment_id, tags=self.tags, run_name=self.run_name)
        self.run_id, self.artifact_uri = run.info.run_id, run.info.artifact_uri
        try:  # the mirrored run shares the id and the (generated) name, and is tagged on the MLflow run
            self.set_tags(self.mirror.start(self.run_id, run.info.run_name))
        except BaseException:
            self.end("FAILED")
            raise
        if self.parent is None:
            self.log_params(flatten_params(self.recipe))
            self.log_text(self.resolved, "recipe.resolved.yaml")
        return self

    def end(self, status: str = "FINISHED") -> None:
        """Close the run: FINISHED, FAILED or KILLED."""
        if self.run_id is not None:
            self.client.set_terminated(self.run_id, status)
            self.mirror.end(status)

    def __enter__(self) -> "Tracker":
        return self.start()

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            self.end("FINISHED")
        else:  # Ctrl-C shows as KILLED in the UI, any other error as FAILED
            self.end("KILLED" if issubclass(exc_type, KeyboardInterrupt) else "FAILED")
        return False

    def child(self, name: str) -> "Tracker":
        """A nested run (tagged mlflow.parentRunId); use it in its own `with` block."""
        self.id  # noqa: B018 - the parent must be running to be a parent
        return Tracker._nested(self, name)

    # --- logging ---
    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param
        from mlflow.utils.validation import MAX_PARAMS_TAGS_PER_BATCH

        texts = {str(k): v if isinstance(v, str) else param_text(v) for k, v in params.items()}
        for chunk in _chunks([Param(k, v) for k, v in texts.items()], MAX_PARAMS_TAGS_PER_BATCH):
            self.client.log_batch(self.id, params=chunk)
        self.mirror.log_params(texts)

    def log_metrics(self, step: int, metrics: Mapping[str, float]) -> None:
        """Metrics of one step (an epoch, a trial); read back as history per key."""
        from mlflow.entities import Metric
        from mlflow.utils.validation import MAX_METRICS_PER_BATCH

        now = int(time.time() * 1000)
        items = [Metric(str(k), float(v), now, int(step)) for k, v in metrics.items()]
        for chunk in _chunks(items, MAX_METRICS_PER_BATCH):
            self.client.log_batch(self.id, metrics=chunk)
        self.mirror.log_metrics(step, {m.key: m.value for m in items})

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        from mlflow.entities import RunTag
        from mlflow.utils.validation import MAX_PARAMS_TAGS_PER_BATCH

        items = [RunTag(str(k), str(v)) for k, v in tags.items()]
        for chunk in _chunks(items, MAX_PARAMS_TAGS_PER_BATCH):
            self.client.log_batch(self.id, tags=chunk)

    def log_artifact_file(self, path: Path, artifact_path: str | None = None) -> None:
        """A file (or a directory's files) under artifact_path (e.g. the model)."""
        path = Path(path)
        if path.is_dir():
            self.client.log_artifacts(self.id, str(path), artifact_path)
        else:
            self.client.log_artifact(self.id, str(path), artifact_path)

    def log_text(self, text: str, name: str) -> None:
        self.client.log_text(self.id, text, name)

    def log_dict(self, data: Mapping[str, Any], name: str) -> None:
        """JSON or YAML by name's suffix (the data report, gate results)."""
        self.client.log_dict(self.id, dict(data), name)

    def artifacts(self, path: str | None = None) -> list[str]:
        """Every artifact path of the run, recursively (for reports and tests)."""
        out: list[str] = []
        for info in self.client.list_artifacts(self.id, path):
            out.extend(self.artifacts(info.path) if info.is_dir else [info.path])
        return out


# --- registry -------------------------------------------------------------------------
def version_tags(resolved: str, gates: Mapping[str, bool]) -> dict[str, str]:
    """Model-version tags: the recipe hash and each gate as gate.<name>=pass|fail."""
    tags = {TAG_HASH: short_hash(resolved)}
    tags.update({f"gate.{name}": "pass" if ok else "fail" for name, ok in sorted(gates.items())})
    return tags


def _registry(run: "Tracker | str", uri: str | None):
    if isinstance(run, Tracker):
        return run.client, run.id
    if uri is None:
        raise MlopsError("register: a run id needs the tracking uri (uri=...)")
    return client(uri), run


def register(
    run: "Tracker | str",
    artifact_path: str,
    name: str,
    tags: Mapping[str, Any] | None = None,
    *,
    uri: str | None = None,
) -> str:
    """Register the run's artifact_path as a new version of `name` (created when
    missing); returns the version as a string ("1", "2", ...)."""
    from mlflow.exceptions import MlflowException

    mlflow_client, run_id = _registry(run, uri)
    try:
        mlflow_client.create_registered_model(name)
    except MlflowException as error:
        if error.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    # The artifact's own location, not runs:/...: the version then resolves without
    # the tracking server (a Triton init container only needs the artifact store).
    source = f"{mlflow_client.get_run(run_id).info.artifact_uri.rstrip('/')}/{artifact_path.strip('/')}"
    version = mlflow_client.create_model_version(
        name, source, run_id=run_id, tags={k: str(v) for k, v in (tags or {}).items()}
    )
    if isinstance(run, Tracker):  # the mirror references the version (W&B: a model artifact)
        run.mirror.log_model(name, str(version.version), source, run_id)
    return str(version.version)


def set_alias(name: str, alias: str, version: str, *, uri: str) -> None:
    client(uri).set_registered_model_alias(name, alias, str(version))


def alias_version(name: str, alias: str, *, uri: str) -> str | None:
    """The version an alias points at; None when the alias or the model doesn't exist."""
    from mlflow.exceptions import MlflowException

    try:
        return str(client(uri).get_model_version_by_alias(name, alias).version)
    except MlflowException as error:
        # MLflow 3.17 says INVALID_PARAMETER_VALUE for an unset alias and
        # RESOURCE_DOES_NOT_EXIST for a missing model.
        if error.error_code in ("INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST"):
            return None
        raise


def promote(name: str, version: str, strategy: str, *, uri: str) -> list[str]:
    """Point `candidate` at version; with the direct strategy `champion` too (the other
    strategies move champion when their rollout succeeds). Returns the aliases moved."""
    aliases = [ALIAS_CANDIDATE] + ([ALIAS_CHAMPION] if strategy == "direct" else [])
    for alias in aliases:
        set_alias(name, alias, version, uri=uri)
    return aliases


def model_version_tags(name: str, version: str, *, uri: str) -> dict[str, str]:
    return dict(client(uri).get_model_version(name, str(version)).tags)


def download(name: str, alias: str, dest: Path, *, uri: str) -> Path:
    """Fetch the files of the version an alias points at into dest (fetch_model)."""
    from mlflow.artifacts import download_artifacts

    mlflow_client = client(uri)
    version = mlflow_client.get_model_version_by_alias(name, alias)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    return Path(download_artifacts(artifact_uri=version.source, dst_path=str(dest), tracking_uri=uri))


def has_store(uri: str) -> bool:
    """False for an embedded sqlite store not created yet (reading must not create one)."""
    return not uri.startswith("sqlite:///") or Path(uri.removeprefix("sqlite:///")).is_file()


def aliases(name: str, *, uri: str) -> dict[str, str | None]:
    """{champion, candidate, rejected: version or None}; all None without a store."""
    if not has_store(uri):
        return {alias: None for alias in ROLLOUT_ALIASES}  # no store yet: don't create one
    return {alias: alias_version(name, alias, uri=uri) for alias in ROLLOUT_ALIASES}


__all__ = [
    "Tracker", "tracking_uri", "artifact_root", "recipe_hash", "short_hash", "resolved_text",
    "git_commit", "flatten_params", "client", "ensure_experiment", "version_tags", "register",
    "set_alias", "alias_version", "aliases", "has_store", "promote", "model_version_tags", "download",
    "ALIAS_CANDIDATE", "ALIAS_CHAMPION",
]

