"""Weights & Biases beside MLflow: the mirror of a tracked run.

`tracking.backends: [mlflow, wandb]` makes every `Tracker` (tracking.py) fan out to a
`WandbMirror`; with MLflow alone it holds `NO_MIRROR`, whose methods do nothing, so the
Tracker calls its mirror without asking which one it has. The mirror gets what the MLflow
run gets, from the driver: the Ray Train workers and the HPO trials report to it (run.py's
`on_epoch` and `on_round`, hpo.py's trial logger), and it logs as they arrive:
- the params as the run's config: the same flattened keys and texts;
- every metric at its MLflow step. W&B's own `_step` may only rise, and merges what one
  step gets, while MLflow takes each value at any step (a resumed training logs the epochs
  before its checkpoint after the live ones; 0 is the step of the data's null counts and of
  the search's best score, the last epoch + 1 that of the validation scores), so each call
  is one row that carries the MLflow step as `step`, and every metric is plotted against it;
- the gate table as a `wandb.Table`;
- the registered version as a `model` artifact referencing `models:/<name>/<version>`
  (what MLflow loads it by: W&B stores the reference, not a second copy of the model).
A W&B run takes its MLflow run's id, and the MLflow run carries the W&B path as the tag
`mlops.wandb.run` (and, offline, the folder to `wandb sync` as `mlops.wandb.dir`).

Offline (the default) writes `<state dir>/wandb/offline-run-*/`, nothing leaves the
machine; online logs in with WANDB_API_KEY, the value of the Secret `tracking.wandb.api_key`
references (contracts/tracking.py names it for the pods). wandb is the optional extra
`wandb`, imported only here and only inside functions.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from framework.contracts.tracking import WANDB_API_KEY_ENV as API_KEY_ENV
from framework.errors import MlopsError, Problem

STEP = "step"  # the MLflow step of a row: every metric's x-axis
TAG_RUN = "mlops.wandb.run"  # MLflow tag: entity/project/run id of the W&B run
TAG_DIR = "mlops.wandb.dir"  # MLflow tag (offline): the run's folder, what `wandb sync` uploads
EXTRA = "pip install -e '.[wandb]'"
_EXIT_CODES = {"FINISHED": 0, "FAILED": 1, "KILLED": 130}  # MLflow's end states as a process would exit


def import_wandb():
    """wandb, or the one-line error naming the extra."""
    try:
        import wandb
    except ImportError:
        raise MlopsError([Problem(None, "tracking.backends", f"wandb needs the wandb extra, which is not "
                                  f"installed: {EXTRA}")]) from None
    return wandb


class Mirror:
    """No mirror (the recipe tracks in MLflow alone), and what a mirror does."""

    where: str | None = None

    def check(self) -> None:
        """Refuse, before any run starts, what would stop the mirror (the extra, the key)."""

    def start(self, run_id: str, run_name: str) -> dict[str, str]:
        """Start the mirrored run; returns the tags that link the MLflow run to it."""
        return {}

    def child(self, name: str) -> "Mirror":
        return self

    def log_params(self, params: Mapping[str, str]) -> None:
        pass

    def log_metrics(self, step: int, metrics: Mapping[str, float]) -> None:
        pass

    def log_table(self, rows: list[Mapping[str, Any]], name: str, step: int) -> None:
        pass

    def log_model(self, name: str, version: str, source: str, run_id: str) -> None:
        pass

    def end(self, status: str) -> None:
        pass


NO_MIRROR = Mirror()


def mirror_for(recipe, state_dir: Path) -> Mirror:
    return WandbMirror(recipe, state_dir) if "wandb" in recipe.tracking.backends else NO_MIRROR


class WandbMirror(Mirror):
    """One W&B run mirroring one MLflow run; `child` gives an HPO trial's, grouped under it."""

    def __init__(self, recipe, state_dir: Path, parent: "WandbMirror | None" = None, job_type: str | None = None):
        from framework.recipe.tracking import Wandb

        self.recipe, self.state_dir, self.parent, self.job_type = recipe, Path(state_dir).resolve(), parent, job_type
        self.settings = recipe.tracking.wandb or Wandb()
        self.run = None

    @property
    def where(self) -> str | None:
        if self.run is None:
            return None
        if self.settings.mode == "online":
            return f"W&B run {self.run.url}"
        folder = self.run.settings.sync_dir
        return f"W&B run {self.run.path} (offline; upload it: wandb sync {folder})"

    def check(self) -> None:
        import_wandb()
        self._api_key()

    def _api_key(self) -> str | None:
        if self.settings.mode != "online":
            return None
        key = os.environ.get(API_KEY_ENV)
        if not key:
            ref = self.settings.api_key
            raise MlopsError([Problem(None, "tracking.wandb.api_key", f"mode online logs in with {API_KEY_ENV}, which "
                                      f"is not set: export the value of the Secret {ref.name} (key {ref.key}) as "
                                      f"{API_KEY_ENV}, or give it to the job's pods")])
        return key

    def start(self, run_id: str, run_name: str) -> dict[str, str]:
        wandb = import_wandb()
        self._environment()
        # Silent: the framework's console reports, W&B's own messages go to its log files.
        wandb.setup(wandb.Settings(silent=True, mode=self.settings.mode))
        try:
            self.run = wandb.init(
                id=run_id, name=run_name, project=self.settings.project or self.recipe.name,
                entity=self.settings.entity, dir=str(self.state_dir), tags=[self.recipe.name, self.recipe.environment],
                group=self.parent.run.id if self.parent else None, job_type=self.job_type,
                settings=self._settings(wandb), reinit="create_new",
            )
        except (wandb.errors.Error, OSError) as error:
            raise MlopsError([Problem(None, "tracking.wandb", f"W&B did not start the run: {error}")]) from None
        self.run.define_metric(STEP, hidden=True)
        self.run.define_metric("*", step_metric=STEP)
        tags = {TAG_RUN: self.run.path}
        if self.settings.mode == "offline":
            tags[TAG_DIR] = str(self.run.settings.sync_dir)
        return tags

    def _environment(self) -> None:
        """What wandb reads only from the environment, set before it starts its service: the
        staged files (the gate table, which an offline run needs until `wandb sync`) and
        wandb-core's logs stay with the runs, not in ~/.local/share and ~/.cache; and offline,
        nothing leaves the machine, wandb's own error reports included."""
        folder = self.state_dir / "wandb"
        os.environ["WANDB_DATA_DIR"] = str(folder / "data")
        os.environ["WANDB_CACHE_DIR"] = str(folder / "cache")
        if self.settings.mode == "offline":
            os.environ["WANDB_ERROR_REPORTING"] = "false"

    def _settings(self, wandb):
        # A fresh Settings per run (wandb.init writes the run's id into the one it gets). No
        # console capture (the framework's console is the user's), no system metrics or host
        # metadata (MLflow records neither), no code, git or pip freeze snapshot.
        return wandb.Settings(mode=self.settings.mode, api_key=self._api_key(), console="off", silent=True,
                              save_code=False, disable_git=True, x_save_requirements=False,
                              x_disable_stats=True, x_disable_meta=True)

    def child(self, name: str) -> "WandbMirror":
        return WandbMirror(self.recipe, self.state_dir, parent=self, job_type="hpo-trial")

    def log_params(self, params: Mapping[str, str]) -> None:
        self.run.config.update(dict(params), allow_val_change=True)

    def log_metrics(self, step: int, metrics: Mapping[str, float]) -> None:
        if metrics:  # a row of its step alone would be a point of nothing
            self.run.log({STEP: int(step), **{str(k): float(v) for k, v in metrics.items()}})

    def log_table(self, rows: list[Mapping[str, Any]], name: str, step: int) -> None:
        import wandb

        if rows:  # a recipe without gates has no table to show
            columns = list(rows[0])
            table = wandb.Table(columns=columns, data=[[row[c] for c in columns] for row in rows])
            self.run.log({STEP: int(step), name: table})

    def log_model(self, name: str, version: str, source: str, run_id: str) -> None:
        import wandb

        uri = f"models:/{name}/{version}"
        artifact = wandb.Artifact(name, type="model", metadata={
            "model_uri": uri, "registered_model": name, "version": version, "source": source, "mlflow_run_id": run_id})
        artifact.add_reference(uri, name=f"{name}/{version}", checksum=False)
        self.run.log_artifact(artifact)

    def end(self, status: str) -> None:
        if self.run is not None:
            self.run.finish(exit_code=_EXIT_CODES.get(status, 1))
