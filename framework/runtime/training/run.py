"""The training job: `python -m framework.runtime.training <recipe.resolved.yaml>`.

The RayJob on a cluster and a local `mlops apply` run this same entrypoint. It reads
only the resolved recipe that `generate` wrote, then: data checks -> split -> features
-> Ray Train -> evaluation -> ONNX export and parity -> gates -> MLflow registry
(alias candidate; champion too for rollout direct) -> the Triton model repository.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


from framework.errors import MlopsError
from framework.runtime.resolved import load_resolved, run_entrypoint


@dataclass
class Outcome:
    recipe: str
    environment: str
    run_id: str | None = None
    model_version: str | None = None
    aliases: list[str] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    gates_passed: bool = False
    run_dir: Path | None = None
    model_repository: Path | None = None
    tracking_uri: str | None = None
    resumed_from_epoch: int = 0
    wandb_run: str | None = None  # where its W&B mirror is (tracking.backends wandb)
    cached: bool = False  # reused a finished run with the same inputs (framework.runtime.stepcache)


def run_training(resolved: Path, root: Path, state_dir: Path, ray_address: str | None = None, console=None,
                 register_only: bool = False) -> Outcome:
    """Run every training-side step of apply for one resolved recipe. `register_only`:
    register the version but move no alias (the CI pipeline's `mlops gate` promotes it)."""
    from rich.console import Console

    from framework.runtime.locks import apply_lock
    from framework.runtime.tracking import short_hash

    console = console or Console(stderr=True)
    recipe, text = load_resolved(resolved)
    if recipe.model.kind != "tabular" or recipe.training is None:
        raise MlopsError(f"{resolved}: model.kind: training runs tabular recipes; {recipe.name} has nothing to train")
    state_dir = state_dir.resolve()
    run_dir = state_dir / "runs" / recipe.name / recipe.environment / short_hash(text)
    outcome = Outcome(recipe.name, recipe.environment, run_dir=run_dir)
    _freeze_at_exit()
    with apply_lock(state_dir, recipe.name):
        _train_evaluate_register(recipe, text, root.resolve(), state_dir, run_dir, ray_address, console, outcome,
                                 register_only)
    return outcome


def _freeze_at_exit() -> None:
    """The interpreter's last garbage collection walks every object that torch, Ray, MLflow
    and pandas left (600,000 and more): 1-2 s of a cold apply's exit on 2 cores. Frozen at
    exit, they are skipped; the process is ending, so their memory goes with it."""
    import atexit
    import gc

    atexit.unregister(gc.freeze)  # once, however many runs this process trains
    atexit.register(gc.freeze)


def _train_evaluate_register(recipe, text, root, state_dir, run_dir, ray_address, console, outcome,
                             register_only: bool = False) -> None:
    from framework.runtime.training import data, data_nulls, gates, splitting
    from framework.runtime.training.data_version import data_version
    from framework.runtime import tracking
    from framework.runtime.training.features import FeaturePipeline
    from framework.runtime.training.steps import step

    console.print(f"[bold]{recipe.name}[/] ({recipe.environment})")
    with step("data", console, run_dir):
        frame, report = data.load_and_check(recipe, root, run_dir, console.print)  # raises before any training
        trained_on = data_version(recipe, root, frame)
        train_df, val_df = (part.reset_index(drop=True) for part in splitting.split(recipe, frame))
        pipeline = FeaturePipeline.fit(recipe, train_df)
        missing = data_nulls.fill_summary(recipe, report.nulls, train_df)
        arrays = {
            "x_train": pipeline.transform(train_df), "y_train": pipeline.targets(train_df),
            "x_val": pipeline.transform(val_df), "y_val": pipeline.targets(val_df),
        }
    run_name = f"{recipe.name}-{recipe.environment}-{tracking.short_hash(text)}"

    tracker = tracking.Tracker(recipe, state_dir, resolved=text, root=root)
    tracker.mirror.check()  # what refuses the run (the W&B extra or key) does so before Ray starts
    # An embedded Ray starts in the background while MLflow opens the run (embedded_ray.py).
    with _ray(recipe, ray_address) as ray_session, tracker as run:
        outcome.run_id, outcome.tracking_uri, outcome.wandb_run = run.run_id, run.uri, run.mirror.where
        run.set_tags(trained_on.tags())  # which bytes (and which commit of them) this run trained on
        run.set_tags(_fingerprints(recipe, trained_on, run.uri).tags())  # what a later apply may reuse
        run.log_artifact_file(run_dir / "data_report.json", "data")
        run.log_artifact_file(run_dir / "data_report.html", "data")
        run.log_dict(pipeline.to_dict(), "model/feature_pipeline.json")
        _log_missing(run, missing)
        if recipe.training.distillation is not None:
            with step("teacher", console, run_dir):
                arrays["t_train"] = _teacher_logits(recipe, pipeline, arrays["x_train"], train_df, run, console)

        with ray_session.running():  # an embedded Ray stops in the background, during the export
            if recipe.training.hpo is not None:
                with step("hyper-parameter search", console, run_dir):
                    recipe = _search(recipe, pipeline, arrays, state_dir, run_dir, run_name, run, console)
                run_name = f"{run_name}-{tracking.short_hash(json.dumps(outcome_values(recipe), sort_keys=True))}"
            with step("training on Ray", console, run_dir):
                result = _train(recipe, pipeline, arrays, state_dir, run_name, run, console, ray_session.embedded)
        outcome.resumed_from_epoch = result.started_at_epoch
        _say_early_stop(recipe, result.history, console)
        if result.started_at_epoch:
            console.print(f"resumed from the checkpoint of epoch {result.started_at_epoch - 1}")

        with step("evaluation and export", console, run_dir):
            scores, onnx_path, served, parity, disparity = _evaluate_and_export(recipe, pipeline, arrays, val_df, result, run, run_dir, outcome)
        with step("drift reference", console, run_dir):
            _record_reference(recipe, pipeline, train_df, scores, run, root)
        report_gates = gates.run_gates(recipe, outcome.metrics, onnx_path, served.stat().st_size, disparity, parity)
        console.print(report_gates.rich_table())
        gate_report = report_gates.to_dict()
        run.log_dict(gate_report, "evaluation/gates.json")
        run.mirror.log_table(gate_report["gates"], "evaluation/gates", recipe.training.epochs)  # W&B shows tables
        run.log_artifact_file(served, "model")
        outcome.gates_passed = report_gates.passed
        run.set_tags({"mlops.gates": "pass" if report_gates.passed else "fail"})
        gates.raise_for_failures(report_gates)  # a failed gate: no version, no alias moves

        with step("registry", console, run_dir):
            results = {g.name: g.passed for g in report_gates.results}
            tags = {**tracking.version_tags(text, results), **trained_on.tags(),
                    "mlops.reference": f"runs:/{run.run_id}/reference"}
            outcome.model_version = tracking.register(run, "model", recipe.registered_model, tags=tags)
            if not register_only:
                outcome.aliases = tracking.promote(recipe.registered_model, outcome.model_version, recipe.rollout.strategy, uri=run.uri)
            if recipe.serving.backend == "triton":
                outcome.model_repository = fill_model_repository(recipe, state_dir, outcome.model_version, served)
    _forget_checkpoints(state_dir, run_dir, run_name)


def _fingerprints(recipe, trained_on, uri: str):
    from framework.runtime import tracking
    from framework.contracts.fingerprint import fingerprints, identity, teacher_inputs

    def version_of(name: str, alias: str) -> str | None:
        return tracking.alias_version(name, alias, uri=uri)

    return fingerprints(recipe, identity(trained_on), teacher_inputs(recipe, version_of))


def _say_early_stop(recipe, history: list[dict], console) -> None:
    if not history or recipe.training.early_stopping is None or recipe.model.architecture == "lightgbm":
        return  # trees say their rounds themselves (_boost)
    last, best = history[-1], int(history[-1].get("best_epoch", -1))
    if int(last["epoch"]) < recipe.training.epochs - 1:
        console.print(f"early stopping after epoch {int(last['epoch']) + 1}: no val_loss improvement for "
                      f"{recipe.training.early_stopping.patience} epochs")
    if best >= 0:
        best_loss = next(h["val_loss"] for h in history if int(h["epoch"]) == best)
        console.print(f"kept the weights of epoch {best + 1} (val_loss {best_loss:.4f})")


def _log_missing(run, missing: dict) -> None:
    """Per feature, its nulls and what filled them: data/missing.json and one
    `data.null_count.<column>` metric each, so runs compare in the MLflow UI."""
    from framework.contracts.params import param_key  # MLflow's rules for key characters

    run.log_dict(missing, "data/missing.json")
    run.log_metrics(0, {param_key(f"data.null_count.{c}"): v["nulls"] for c, v in missing["columns"].items()})


def _evaluate_and_export(recipe, pipeline, arrays, val_df, result, run, run_dir: Path, outcome):
    """The trained model's scores function (on encoded rows); validation metrics (and
    fairness), the ONNX file with its parity, the served file."""
    from framework.runtime.training import export, metrics_eval

    if recipe.model.architecture == "lightgbm":
        from framework.runtime.training import boosting

        booster = result.booster()

        def scores(x):
            return boosting.predict(booster, x, recipe.model.task)
    else:
        from framework.runtime.training.model import build_model, predict

        model = build_model(recipe, pipeline)
        model.load_state_dict(result.state_dict)

        def scores(x):
            return predict(model, x)
    outputs = scores(arrays["x_val"])
    outcome.metrics = metrics_eval.evaluate(recipe, outputs, arrays["y_val"])
    run.log_metrics(recipe.training.epochs, {f"val_{k}": v for k, v in outcome.metrics.items()})
    disparity = None
    fairness = recipe.evaluation.gates.fairness
    if fairness is not None:
        disparity, groups = metrics_eval.fairness_disparity(recipe, outputs, arrays["y_val"], val_df[fairness.attribute])
        run.log_dict({"disparity": disparity, "groups": groups}, "evaluation/fairness.json")
    sample = val_df.iloc[:256]
    if recipe.model.architecture == "lightgbm":
        onnx_path = boosting.export_onnx(booster, recipe, pipeline, run_dir / "model.onnx")
        parity = boosting.parity(booster, pipeline, onnx_path, sample)
        run.log_text(result.model_text, "model/lightgbm_model.txt")  # LightGBM's own format, for its tools
        return scores, onnx_path, onnx_path, parity, disparity
    onnx_path = export.export_onnx(model, recipe, pipeline, run_dir / "model.onnx")
    parity = export.parity(model, pipeline, onnx_path, sample)
    served = onnx_path
    if recipe.serving.format == "torchscript":
        served = export.export_torchscript(model, pipeline, run_dir / "model.pt")
    return scores, onnx_path, served, parity, disparity


def _record_reference(recipe, pipeline, train_df, scores, run, root: Path) -> None:
    """What `mlops monitor` compares served traffic with (training/reference.py)."""
    from framework.runtime.training import reference

    frame, schema = reference.build(recipe, pipeline, train_df, scores, root, seed=recipe.training.seed)
    reference.log(run, frame, schema)


def outcome_values(recipe) -> dict[str, Any]:
    """The values HPO chose, read back from the recipe (names the final training run)."""
    tree = recipe.model_dump(mode="json")
    values = {}
    for key in recipe.training.hpo.search_space:
        node = tree
        for part in key.split("."):
            node = node[part]
        values[key] = node
    return values


@contextmanager
def _ray(recipe, ray_address: str | None):
    """Ray for the search and the training: embedded (started in the background, stopped
    afterwards, also on Ctrl-C, so nothing keeps running) or the cluster at ray_address."""
    from framework.runtime.training.embedded_ray import RaySession

    cpus = max(2, int(recipe.training.workers * recipe.training.cpus_per_worker))
    warm = "ray.train.lightgbm" if recipe.model.architecture == "lightgbm" else "ray.train.torch"
    session = RaySession(cpus, ray_address, warm=warm).start()
    try:
        yield session
    finally:
        session.close()


def _train(recipe, pipeline, arrays, state_dir: Path, run_name: str, run, console, embedded: bool = False):
    """Ray Train with a live epoch bar; every epoch's metrics go to MLflow as they come."""
    from framework.runtime.training.progress import EpochBar
    from framework.runtime.training.trainer import train_on_ray

    logged: set[int] = set()

    def on_epoch(metrics: dict[str, float]) -> None:
        epoch = int(metrics["epoch"])
        run.log_metrics(epoch, {k: v for k, v in metrics.items() if k != "epoch"})
        logged.add(epoch)
        bar.advance(metrics)

    if recipe.model.architecture == "lightgbm":
        return _boost(recipe, arrays, state_dir, run_name, run, console, embedded)
    with EpochBar(console, recipe.training.epochs) as bar:
        result = train_on_ray(recipe.model_dump(mode="json"), pipeline.to_dict(), arrays, state_dir / "ray", run_name,
                              on_epoch=on_epoch, embedded=embedded)
    for entry in result.history:  # epochs not seen live (those before a resume)
        if int(entry["epoch"]) not in logged:
            run.log_metrics(int(entry["epoch"]), {k: v for k, v in entry.items() if k != "epoch"})
    return result


def _boost(recipe, arrays, state_dir: Path, run_name: str, run, console, embedded: bool = False):
    """Ray Train's LightGBMTrainer; the validation loss of every tenth round goes to MLflow."""
    from framework.runtime.training.boosting import train_on_ray

    with console.status(f"growing up to {recipe.model.trees.num_boost_round} trees on {recipe.training.workers} worker(s)"):
        result = train_on_ray(recipe, arrays, state_dir / "ray", run_name, embedded=embedded,
                              on_round=lambda entry: run.log_metrics(int(entry["epoch"]), {"val_loss": entry["val_loss"]}))
    console.print(f"LightGBM: {result.rounds} rounds, kept the first {result.best_iteration} "
                  "(the best validation loss)")
    return result


def _search(recipe, pipeline, arrays, state_dir: Path, run_dir: Path, run_name: str, run, console):
    """HPO, or its saved result when an interrupted apply of this recipe already ran it."""
    from framework.runtime.training import hpo
    from framework.runtime.training.progress import TrialBar

    saved_at = run_dir / "hpo.json"
    found = hpo.load(saved_at)
    if found is not None:
        console.print(f"reusing the search this recipe already finished: {saved_at}")
    else:
        settings = recipe.training.hpo
        with TrialBar(console, settings.n_trials, settings.metric, settings.direction) as bar:
            found = hpo.search(recipe, pipeline.to_dict(), arrays, state_dir / "ray" / "hpo", f"{run_name}-hpo",
                               parent_run=run, on_trial=bar.advance)
        hpo.save(found, saved_at)
    console.print(hpo.trials_table(found))
    run.log_dict(found.to_dict(), "hpo/search.json")
    run.log_params({f"hpo.best.{k}": v for k, v in found.best_values.items()})
    run.log_metrics(0, {f"hpo_best_{found.metric}": found.best_score})
    return hpo.with_values(recipe, found.best_values)


def _teacher_logits(recipe, pipeline, x_train, train_df, run, console):
    """The teacher's logits for the training rows, computed once here so that workers
    and trials need neither MLflow nor the teacher."""
    from framework.runtime.training.distill import recipe_teacher_logits

    teacher = recipe.training.distillation.teacher
    console.print(f"distillation: soft targets from {teacher}")
    run.set_tags({"mlops.teacher": teacher})
    return recipe_teacher_logits(recipe, pipeline, x_train, tracking_uri=run.uri, raw=pipeline.raw_inputs(train_df))


def fill_model_repository(recipe, state_dir: Path, version: str, model_file: Path) -> Path:
    """Triton's layout: <repo>/<model>/config.pbtxt and <repo>/<model>/<version>/<file>."""
    from framework.contracts.triton import model_name
    from framework.runtime.serving.model_config import write_config

    model_dir = state_dir / "model_repository" / model_name(recipe)
    (model_dir / version).mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model_file, model_dir / version / model_file.name)
    write_config(model_dir, recipe)
    return model_dir.parent


def _forget_checkpoints(state_dir: Path, run_dir: Path, run_name: str) -> None:
    """A finished run needs no resume: the next apply of the same recipe trains anew."""
    shutil.rmtree(state_dir / "ray" / run_name, ignore_errors=True)
    (run_dir / "hpo.json").unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m framework.runtime.training", description=__doc__.splitlines()[0])
    parser.add_argument("resolved", type=Path, help="recipe.resolved.yaml written by `mlops generate`")
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="project root (data paths are relative to it)")
    parser.add_argument("--state-dir", type=Path, default=Path(os.environ.get("MLOPS_STATE_DIR", ".mlops")))
    parser.add_argument("--ray-address", default=os.environ.get("RAY_ADDRESS"), help="Ray cluster; default an embedded one")
    parser.add_argument("--register-only", action="store_true",
                        help="register the version but move no alias (`mlops gate` promotes it)")
    args = parser.parse_args(argv)

    def body() -> int:
        outcome = run_training(args.resolved, args.root, args.state_dir, args.ray_address,
                               register_only=args.register_only)
        print(summary(outcome))
        print(outcome_line(outcome), flush=True)
        return 0

    return run_entrypoint(body)


# The job's last word, for whoever submitted it (`apply --target ray` reads it from the log).
OUTCOME_MARKER = "mlops-outcome: "


def outcome_line(outcome: Outcome) -> str:
    return OUTCOME_MARKER + json.dumps({"run_id": outcome.run_id, "model_version": outcome.model_version,
                                        "tracking_uri": outcome.tracking_uri, "aliases": outcome.aliases}, sort_keys=True)


def outcome_from_log(log: str) -> dict | None:
    """The last outcome line of a job's log; None when the job printed none."""
    for line in reversed(log.splitlines()):
        if line.startswith(OUTCOME_MARKER):
            try:
                return json.loads(line[len(OUTCOME_MARKER):])
            except ValueError:
                return None
    return None


def summary(outcome: Outcome) -> str:
    metrics = ", ".join(f"{k} {v:.4f}" for k, v in sorted(outcome.metrics.items()))
    aliases = ", ".join(outcome.aliases) or "no alias moved: `mlops gate` promotes it"
    cached = ": the inputs of a finished run, reused (--no-cache trains anew)" if getattr(outcome, "cached", False) else ""
    lines = [
        f"{outcome.recipe} ({outcome.environment}): model version {outcome.model_version} "
        f"({aliases}), gates passed{cached}",
        f"  metrics: {metrics}",
        f"  MLflow run {outcome.run_id} in {outcome.tracking_uri}",
    ]
    if getattr(outcome, "run_dir", None) is not None:
        lines.append(f"  artifacts: {outcome.run_dir}")
    if outcome.wandb_run:
        lines.append(f"  {outcome.wandb_run}")
    if outcome.model_repository:
        lines.append(f"  Triton model repository: {outcome.model_repository}")
    if outcome.tracking_uri and outcome.tracking_uri.startswith("sqlite:///"):
        lines.append(f"  open the MLflow UI: mlflow ui --backend-store-uri {outcome.tracking_uri}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
