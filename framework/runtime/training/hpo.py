"""Hyper-parameter search (`training.hpo`): Optuna's samplers driven by Ray Tune.

Why Ray Tune's OptunaSearch rather than Hydra's Optuna sweeper: the trials run on the
Ray cluster the training already uses (the same RayJob on Kubernetes, the embedded Ray
locally), in parallel up to `max_concurrent`, reading the data from Ray's object store
instead of reloading it per trial; the sweeper launches one Hydra job per trial, needs
a `@hydra.main` application (this project composes without Hydra's global state), and
its plugin pins an Optuna 2.x.

Each trial trains the recipe with the trial's values in one process (EpochRunner, the
very loop of the Ray Train workers; boosting.fit for LightGBM's trees, whose keys such
as model.boosting.num_leaves are searched the same way) and reports the validation metrics every epoch;
a trial stops early as the final training would (training.early_stopping), and its
score is its last epoch's (the final model keeps its best epoch's weights instead, so
the two can differ by what `patience` epochs of no improvement cost). Every
trial is a nested MLflow run of the apply's run. The best values then train the final
model on Ray Train with the recipe's workers.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from framework.errors import MlopsError, Problem


@dataclass
class SearchResult:
    best_values: dict[str, Any]  # recipe key -> value of the best trial
    best_score: float
    metric: str
    trials: list[dict[str, Any]] = field(default_factory=list)  # values, score, status per trial
    direction: str = "maximize"

    def to_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "direction": self.direction, "best_score": self.best_score,
                "best_values": self.best_values, "trials": self.trials}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SearchResult:
        return cls(data["best_values"], data["best_score"], data["metric"], data.get("trials", []),
                   data.get("direction", "maximize"))


def reported_metric(hpo) -> str:
    """The key trials report the recipe's hpo.metric under (loss is the validation loss)."""
    return "val_loss" if hpo.metric == "loss" else f"val_{hpo.metric}"


def with_values(recipe, values: dict[str, Any]):
    """The recipe with dotted keys set to values, validated again (a trial's recipe)."""
    from framework.recipe.recipe import Recipe

    data = recipe.model_dump(mode="json")
    for key, value in values.items():
        *parents, leaf = key.split(".")
        node = data
        for part in parents:
            node = node[part]
        node[leaf] = value
    return Recipe.model_validate(data)


class DefineByRun:
    """Optuna's define-by-run space: the recipe's ranges as suggest_* calls (a class, not
    a closure, because Tune pickles the searcher with its state).

    Categorical choices are suggested by index, because Optuna only stores scalars and
    a choice may be a list (e.g. model.hidden_sizes); `decode` maps indices back.
    """

    def __init__(self, search_space):
        self.search_space = search_space

    def __call__(self, trial) -> None:
        for key, param in self.search_space.items():
            if param.type == "float":
                trial.suggest_float(key, param.low, param.high, log=param.log)
            elif param.type == "int":
                trial.suggest_int(key, param.low, param.high, step=param.step, log=param.log)
            else:
                trial.suggest_categorical(key, list(range(len(param.choices))))


def make_sampler(hpo):
    """Optuna's sampler named by training.hpo.sampler, seeded."""
    import optuna

    samplers = {"tpe": optuna.samplers.TPESampler, "random": optuna.samplers.RandomSampler,
                "cmaes": optuna.samplers.CmaEsSampler}
    return samplers[hpo.sampler](seed=hpo.seed)


def decode(search_space, config: dict[str, Any]) -> dict[str, Any]:
    values = {}
    for key, param in search_space.items():
        value = config[key]
        if param.type == "categorical":
            value = param.choices[int(value)]
        elif param.type == "int":
            value = int(value)
        else:
            value = float(value)
        values[key] = value
    return values


def search(
    recipe,
    pipeline_dict: dict[str, Any],
    arrays: dict[str, np.ndarray],
    storage: Path,
    run_name: str,
    *,
    parent_run=None,
    on_trial: Callable[[dict[str, Any]], None] | None = None,
) -> SearchResult:
    """Run the search on the Ray that the caller initialised; returns the best values."""
    import optuna
    import ray
    from ray import tune
    from ray.tune.search import ConcurrencyLimiter
    from ray.tune.search.optuna import OptunaSearch

    from framework.recipe.types import duration_seconds

    _tune_settings(optuna)
    hpo = recipe.training.hpo
    metric, mode = reported_metric(hpo), "max" if hpo.direction == "maximize" else "min"
    searcher = OptunaSearch(space=DefineByRun(hpo.search_space), metric=metric, mode=mode, sampler=make_sampler(hpo))
    resources = {"cpu": float(recipe.training.cpus_per_worker), "gpu": float(recipe.training.gpus_per_worker)}
    trainable = tune.with_resources(
        tune.with_parameters(_trial, recipe_dict=recipe.model_dump(mode="json"), pipeline_dict=pipeline_dict,
                             arrays=ray.put(arrays)),
        resources,
    )
    logger = _trial_logger(hpo.search_space, metric, parent_run, on_trial)
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=ConcurrencyLimiter(searcher, max_concurrent=hpo.max_concurrent),
            num_samples=hpo.n_trials,
            time_budget_s=duration_seconds(hpo.timeout) if hpo.timeout else None,
        ),
        run_config=tune.RunConfig(name=run_name, storage_path=str(Path(storage).resolve()), verbose=0,
                                  callbacks=[logger], failure_config=tune.FailureConfig(max_failures=0)),
    )
    try:
        results = tuner.fit()
    except BaseException as error:
        logger.end_open_runs("KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED")
        raise
    finished = [r for r in results if r.error is None and r.metrics and _finite(r.metrics.get(metric))]
    if not finished:
        errors = sorted({type(r.error).__name__ for r in results if r.error is not None})
        detail = f" (errors: {', '.join(errors)})" if errors else ""
        raise MlopsError([Problem(None, "training.hpo", f"hpo: no trial finished with a {metric}{detail}: "
                                  "see the trials' logs under the Ray storage, widen or fix search_space")])
    best = results.get_best_result(metric=metric, mode=mode, scope="last", filter_nan_and_inf=True)
    return SearchResult(decode(hpo.search_space, best.config), float(best.metrics[metric]), hpo.metric, logger.trials,
                        hpo.direction)


def _tune_settings(optuna) -> None:
    """Tune and Optuna settings: our trial bar and table replace their progress output."""
    import logging
    import os

    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"  # the legacy reporter honours verbose=0
    # Tune's own SIGINT handler would end the search early and let apply go on with the
    # trials so far; without it Ctrl-C stops apply, as everywhere else.
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("ray.tune").setLevel(logging.WARNING)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def _trial(config: dict[str, Any], *, recipe_dict, pipeline_dict, arrays) -> None:
    """One trial, in one Ray Tune worker process."""
    import ray
    import torch
    from ray import tune

    from framework.recipe.recipe import Recipe
    from framework.runtime.training.epochs import EarlyStop, EpochRunner

    base = Recipe.model_validate(recipe_dict)
    recipe = with_values(base, decode(base.training.hpo.search_space, config))
    torch.set_num_threads(max(1, int(recipe.training.cpus_per_worker)))
    arrays = ray.get(arrays) if isinstance(arrays, ray.ObjectRef) else arrays
    if recipe.model.architecture == "lightgbm":
        return _boosted_trial(recipe, arrays)
    runner = EpochRunner(recipe, pipeline_dict, arrays)
    early = EarlyStop(recipe.training.early_stopping)
    for epoch in range(recipe.training.epochs):
        train_loss = runner.train_epoch(epoch)
        metrics = runner.validate()
        runner.schedule(metrics["val_loss"])
        tune.report({"epoch": epoch, "train_loss": train_loss, **metrics})
        if early.observe(epoch, metrics["val_loss"], runner.model):
            break  # as the final training would; the trial's score is its last report


def _boosted_trial(recipe, arrays) -> None:
    """A LightGBM trial: the trees in one process, scored once on the validation split
    (with the final model's early stopping, so the score is the kept round's)."""
    from ray import tune

    from framework.runtime.training import boosting
    from framework.runtime.training.metrics_eval import evaluate

    grown = boosting.fit(recipe, arrays)
    scores = boosting.predict(grown.booster(), arrays["x_val"], recipe.model.task)
    metrics = {f"val_{k}": v for k, v in evaluate(recipe, scores, arrays["y_val"]).items()}
    best_loss = next((h["val_loss"] for h in grown.history if h["epoch"] == grown.best_iteration - 1), None)
    tune.report({"epoch": 0, **metrics, **({"val_loss": best_loss} if best_loss is not None else {})})


def _trial_logger(search_space, metric: str, parent_run, on_trial):
    """A Tune callback; subclassed here so importing this module does not import Ray."""
    from ray.tune import Callback

    class TrialLogger(_TrialLogging, Callback):
        pass

    return TrialLogger(search_space, metric, parent_run, on_trial)


class _TrialLogging:
    """Runs in the driver: every trial a nested MLflow run with its values as params and
    its epochs as metrics; on_trial sees each finished trial (the progress bar)."""

    def __init__(self, search_space, metric: str, parent_run, on_trial):
        self.search_space, self.metric, self.parent_run, self.on_trial = search_space, metric, parent_run, on_trial
        self.runs: dict[str, Any] = {}
        self.started = 0
        self.last: dict[str, dict[str, Any]] = {}
        self.trials: list[dict[str, Any]] = []

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its callbacks with the experiment state; the MLflow run and the
        # progress bar stay in this process (a restored search logs nothing).
        return {**self.__dict__, "parent_run": None, "on_trial": None, "runs": {}}

    def on_trial_start(self, iteration, trials, trial, **info):
        if self.parent_run is not None:
            self.started += 1
            child = self.parent_run.child(f"trial-{self.started}").start()
            child.log_params(decode(self.search_space, trial.config))
            self.runs[trial.trial_id] = child

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.last[trial.trial_id] = result
        child = self.runs.get(trial.trial_id)
        if child is not None:
            numbers = {k: v for k, v in result.items()
                       if k in ("train_loss",) or (k.startswith("val_") and isinstance(v, (int, float)))}
            child.log_metrics(int(result.get("epoch", 0)), numbers)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self._finish(trial, "FINISHED")

    def on_trial_error(self, iteration, trials, trial, **info):
        self._finish(trial, "FAILED")

    def end_open_runs(self, status: str) -> None:
        """Close the nested runs of trials still running when the search stops."""
        for child in self.runs.values():
            child.end(status)
        self.runs.clear()

    def _finish(self, trial, status: str) -> None:
        score = self.last.get(trial.trial_id, {}).get(self.metric)
        entry = {"trial": len(self.trials) + 1, "values": decode(self.search_space, trial.config),
                 "score": score, "status": status}
        self.trials.append(entry)
        child = self.runs.pop(trial.trial_id, None)
        if child is not None:
            child.end(status)
        if self.on_trial is not None:
            self.on_trial(entry)


def save(result: SearchResult, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result.to_dict(), indent=2, sort_keys=True, default=str), encoding="utf-8")


def load(path: Path) -> SearchResult | None:
    try:
        return SearchResult.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError):
        return None


def trials_table(result: SearchResult):
    """The trials, best first, as a rich table (the terminal summary of the search)."""
    from rich.table import Table

    table = Table(title=f"HPO trials by {result.metric}")
    keys = sorted({k for trial in result.trials for k in trial["values"]})
    for column in ("trial", *keys, result.metric, "status"):
        table.add_column(column)
    finished = [t for t in result.trials if isinstance(t.get("score"), (int, float))]
    for trial in [*sorted(finished, key=lambda t: t["score"], reverse=result.direction == "maximize"), *[t for t in result.trials if t not in finished]]:
        best = trial["values"] == result.best_values
        cells = [str(trial["trial"]), *(_cell(trial["values"].get(k)) for k in keys), _cell(trial.get("score")),
                 trial["status"] + (" (best)" if best else "")]
        table.add_row(*cells)
    return table


def _cell(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)
