"""The apply pipelines of a tabular recipe: here on an embedded Ray (`local`) and as a
job on a Ray cluster (`ray`), each declared once as stages of steps (see steps.py).
Both generate, then run the training job (framework.runtime.training.run: data checks,
optional teacher and HPO, training, MLflow tracking, evaluation and ONNX export, the
drift reference, gates, registry, and the Triton model repository), then roll the
candidate out against the champion: on the embedded server here, on the cluster's Ray
Serve application there (a Triton recipe on a cluster is served elsewhere: no rollout).
With `--register-only` the version is registered without an alias and nothing is rolled
out. Imported only when a tabular recipe is applied.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from framework.api.steps import ApplyRun, Pipeline, Stage, Step, generate_files, needs_address
from framework.errors import MlopsError, Problem
from framework.project import display_path


def _trainer(r: Any) -> str:
    return "Ray Train's LightGBMTrainer" if r.model.architecture == "lightgbm" else "Ray Train's TorchTrainer"


def _training(r: Any) -> str:
    """How long it trains and what it keeps, as the step will do it."""
    if r.training is None:
        return "-"
    early = r.training.early_stopping
    if r.model.architecture == "lightgbm":
        rounds = r.model.trees.num_boost_round
        stop = f", stopping after {early.patience} rounds without a better validation loss" if early else ""
        return f"up to {rounds} trees{stop}"
    stop = (f", stopping after {early.patience} epochs without a better validation loss (best epoch kept)"
            if early else "")
    return f"up to {r.training.epochs} epochs{stop}, checkpoints every {r.training.checkpoint.every_epochs} epochs"


def _train(run: ApplyRun) -> str:
    r = run.recipe
    where = "on an embedded Ray" if run.target == "local" else f"in a Ray job on the cluster at {run.address}"
    return f"train: {_trainer(r)} {where} ({r.training.workers if r.training else 0} workers), {_training(r)}"


def _teacher(run: ApplyRun) -> str:
    d = run.recipe.training.distillation
    return f"teacher: soft targets from {d.teacher} (temperature {d.temperature}, alpha {d.alpha})"


def _hpo(run: ApplyRun) -> str:
    h = run.recipe.training.hpo
    return (f"hpo: {h.n_trials} Optuna trials ({h.sampler}, {h.max_concurrent} at once) on Ray Tune over "
            f"{', '.join(h.search_space)}, {h.direction} {h.metric}; the best values train the final model")


def _gates(run: ApplyRun) -> str:
    gates = run.recipe.evaluation.gates
    named = [f"{k} {v}" for k, v in gates.thresholds().items()]
    named += [f"{k} {getattr(gates, k)}" for k in ("max_latency_p95_ms", "max_model_size_mb") if getattr(gates, k) is not None]
    if gates.fairness:
        named.append(f"fairness {gates.fairness.attribute} <= {gates.fairness.max_disparity}")
    return f"gates: {', '.join(named) or 'none'}"


def _register(run: ApplyRun) -> str:
    r = run.recipe
    if run.register_only:
        return f"register (no alias: `mlops gate` promotes it): model version of '{r.registered_model}', alias candidate"
    champion = " and champion (rollout direct)" if r.rollout.strategy == "direct" else ""
    return f"register: model version of '{r.registered_model}', alias candidate{champion}"


def _rollout(run: ApplyRun) -> str:
    where = ("the embedded server" if run.target == "local"
             else f"the Ray Serve application on the Ray cluster at {run.address}")
    return (f"rollout: {run.recipe.rollout.strategy} of the candidate against the champion on {where} (synthetic "
            "traffic from the validation rows), then promote (alias champion), roll back (alias rejected) or, a "
            "bandit's inconclusive evidence, keep the champion")


def _track(run: ApplyRun) -> str:
    t = run.recipe.tracking
    line = (f"track: MLflow run in {t.uri or display_path(run.project.state_dir / 'mlflow.db')} "
            "(params, per-epoch metrics, data report, model)")
    if "wandb" not in t.backends:
        return line
    where = ("online, logged in with WANDB_API_KEY" if t.wandb.mode == "online"
             else f"offline under {display_path(run.project.state_dir / 'wandb')}")
    return f"{line}, mirrored to W&B project {t.wandb.project or run.recipe.name} ({where})"


def _rolls_out(run: ApplyRun) -> bool:
    return not run.register_only and (run.target == "local" or run.recipe.serving.backend == "ray_serve")


GENERATE = Step("generate", lambda run: f"generate: write generated/{run.recipe.name}/{run.recipe.environment}/ "
                                        "(the job reads only what is on disk)")
def _feast(run: ApplyRun) -> bool:
    from framework.contracts.feast import enabled

    return enabled(run.recipe)


def _feast_apply(run: ApplyRun) -> str:
    f = run.recipe.data.source.feast
    return (f"feast-apply: register the definitions of {f.repo}/ (feature view {f.feature_view}) in the Feast "
            f"registry {f.registry}, after checking them against data.source.feast")


def _materialize(run: ApplyRun) -> str:
    f = run.recipe.data.source.feast
    return (f"materialize: the rows of {f.feature_view} up to now into the {f.online_store.type} online store "
            "(what the serving app looks up by entity id)")


FEAST_APPLY = Step("feast-apply", _feast_apply, when=_feast)
MATERIALIZE = Step("materialize", _materialize, when=_feast)


def _feature_store(run: ApplyRun) -> None:
    from framework.runtime.features.register import materialize, register

    r, root = run.recipe, run.project.root
    with run.console.status(f"feast apply: {r.data.source.feast.repo}/"):
        done = register(r, root)
    run.console.print(f"feast apply: {done.entities} entit{'y' if done.entities == 1 else 'ies'} and {done.views} "
                      f"feature view{'' if done.views == 1 else 's'} in project {done.project} ({done.registry})")
    with run.console.status(f"materialising {r.data.source.feast.feature_view} into the online store"):
        until = materialize(r, root)
    run.console.print(f"materialize: {r.data.source.feast.feature_view} up to {until:%Y-%m-%d %H:%M:%S} UTC "
                      f"into the {r.data.source.feast.online_store.type} online store")


def _data(run: ApplyRun) -> str:
    data = run.recipe.data
    if data is None:
        return "data: -"
    at = f" at git revision {data.version.rev} (DVC)" if data.version is not None else ""
    if data.source.feast is not None:
        at += f", join feature view {data.source.feast.feature_view} point in time (Feast)"
    return (f"data: load {data.source.uri}{at}, check data.expectations, the target and the nulls (report under "
            ".mlops/runs/); record its version (sha256, git commit) on the run and the model version")


DATA = Step("data", _data)
TEACHER = Step("teacher", _teacher, when=lambda run: run.recipe.training is not None
               and run.recipe.training.distillation is not None)
HPO = Step("hpo", _hpo, when=lambda run: run.recipe.training is not None and run.recipe.training.hpo is not None)
TRAIN = Step("train", _train)
TRACK = Step("track", _track)
EVALUATE = Step("evaluate", lambda run: f"evaluate: {', '.join(run.recipe.evaluation.metrics)} on the validation "
                f"split; export ONNX; parity <= {run.recipe.evaluation.gates.onnx_parity_atol}")
DRIFT_REFERENCE = Step("drift reference", lambda run: "drift reference: a seeded sample of the training split with "
                       "the model's outputs, and the feature schema, logged with the run (what `mlops monitor` "
                       "compares served traffic with)")
GATES = Step("gates", _gates)
REGISTER = Step("register", _register)
SERVE_READY = Step("serve-ready", lambda run: "serve-ready: fill the Triton model repository .mlops/model_repository/",
                   when=lambda run: run.recipe.serving.backend == "triton")
ROLLOUT = Step("rollout", _rollout, when=_rolls_out)

FEATURE_STORE = (FEAST_APPLY, MATERIALIZE)  # before training: the join reads the registry
# What the training job does, in its order (framework.runtime.training.run._train_evaluate_register).
TRAINING_JOB = (DATA, TEACHER, HPO, TRAIN, TRACK, EVALUATE, DRIFT_REFERENCE, GATES, REGISTER, SERVE_READY)


def _probe(run: ApplyRun):
    """The step cache's answer for this apply, asked once (framework.runtime.stepcache)."""
    if run.probe is None:
        from framework.runtime.stepcache.probe import probe

        run.probe = probe(run.recipe, run.project.root, run.project.state_dir, run.use_cache)
    return run.probe


def _statuses(run: ApplyRun) -> dict[str, str]:
    """Per step: cached (with the run and the data it trained on) or why it runs."""
    from framework.runtime.stepcache.reuse import already_champion

    found = _probe(run)
    said = {step.name: found.status(step.name) for step in TRAINING_JOB if step is not SERVE_READY}
    if found.hit is not None:
        said[SERVE_READY.name] = f"runs: with the cached version {found.hit.version}"
        if already_champion(found) and not run.register_only:
            said[ROLLOUT.name] = f"cached: version {found.hit.version} is the champion already"
    return said


def _reused(run: ApplyRun) -> bool:
    """A hit: the job's outputs of the finished run, aliases moved as the job would."""
    from framework.runtime.stepcache.reuse import reuse
    from framework.runtime.training.run import summary

    found = _probe(run)
    if found.hit is None:
        run.console.print(f"training job runs: {found.reason}")
        return False
    run.console.print(f"training job {found.hit.line()}")
    run.outcome = reuse(run.recipe, found, run.project.state_dir, run.register_only)
    run.report = summary(run.outcome)
    return True


def _train_here(run: ApplyRun) -> None:
    from framework.runtime.training.run import run_training, summary

    if _reused(run):
        return
    proj = run.project
    run.outcome = run_training(run.resolved, proj.root, proj.state_dir, None, run.console, register_only=run.register_only)
    run.report = summary(run.outcome)


def _champion_already(run: ApplyRun) -> bool:
    """A cached version that serves as champion already needs no rollout."""
    from framework.runtime.stepcache.reuse import already_champion

    if run.probe is None or not already_champion(run.probe):
        return False
    run.console.print(f"rollout: cached: version {run.probe.hit.version} is the champion already")
    return True


def _roll_out_here(run: ApplyRun) -> None:
    from framework.runtime.locks import apply_lock
    from framework.runtime.rollout.controller import serve_hint
    from framework.runtime.rollout.local import rollout_local

    proj, r = run.project, run.recipe
    run.serve_hint = serve_hint(r)
    if _champion_already(run):
        return
    with apply_lock(proj.state_dir, r.name):  # run_training released its lock on return
        run.rollout = rollout_local(r, proj.state_dir, proj.root, console=run.console)


def _check_cluster(run: ApplyRun) -> None:
    """The job needs a cluster, a Ray training engine and a tracking store it can write."""
    needs_address(run)
    r, proj = run.recipe, run.project
    if r.training.engine != "ray":
        raise MlopsError([Problem(None, "--target", "--target ray submits the generated RayJob: training.engine must be ray")])
    if run.head_shares_disk:
        return
    from framework.runtime.submit import local_store

    if local_store(r):
        store = r.tracking.uri or f"the embedded store {display_path(proj.state_dir / 'mlflow.db')}"
        message = (f"--target ray runs the job on the cluster, which cannot write {store} on this machine: "
                   "set tracking.uri to an MLflow server the cluster reaches (e.g. `mlflow server --host 0.0.0.0 "
                   "--backend-store-uri sqlite:///mlflow.db --artifacts-destination s3://bucket/mlflow`), or "
                   "pass --head-shares-disk when the head sees this project at the same path")
        raise MlopsError([Problem(None, "tracking.uri", message)])
    if "wandb" in r.tracking.backends and r.tracking.wandb.mode == "offline":
        message = ("--target ray runs the job on the cluster, where offline W&B runs stay in the job's pod: set "
                   "tracking.wandb.mode online (with tracking.wandb.api_key), or pass --head-shares-disk when the head "
                   "sees this project at the same path")
        raise MlopsError([Problem(None, "tracking.wandb.mode", message)])


def _train_on_cluster(run: ApplyRun) -> None:
    from framework.runtime.submit import job_spec, snapshot, submit_and_follow
    from framework.runtime.training.run import outcome_from_log

    proj, r = run.project, run.recipe
    if _reused(run):
        run.job_outcome = {"run_id": run.outcome.run_id, "model_version": run.outcome.model_version,
                           "tracking_uri": run.outcome.tracking_uri, "aliases": run.outcome.aliases}
        return
    with snapshot(proj.root) as working_dir:
        spec = job_spec(proj.root, run.env_dir, proj.state_dir, r, run.register_only, working_dir=working_dir,
                        head_shares_disk=run.head_shares_disk)
        if r.data is not None and r.data.version is not None:  # the upload has no .git: the file at the revision
            from framework.runtime.training.data_version import pin_for_job

            spec["runtime_env"]["env_vars"].update(pin_for_job(r, proj.root, working_dir))
        if _feast(run):  # dev's registry file is git-ignored
            from framework.runtime.features.register import carry_registry

            carry_registry(r, proj.root, working_dir)
        status, log = submit_and_follow(run.address, spec)
    if status != "SUCCEEDED":
        raise MlopsError([Problem(None, "train", f"the Ray job ended {status}: its log is above")])
    run.job_status, run.job_outcome = status, outcome_from_log(log)
    run.report = f"{r.name} ({r.environment}): Ray job {status}"
    version = (run.job_outcome or {}).get("model_version")
    if not run.head_shares_disk and version and r.serving.backend == "triton":
        _fetch_model_repository(r, proj.state_dir, str(version))


def _fetch_model_repository(r: Any, state_dir: Path, version: str) -> None:
    """The version the cluster's job registered, from the registry into this machine's
    Triton model repository (what `mlops serve` and the rollout load), as apply leaves it."""
    import tempfile

    from framework.runtime import tracking
    from framework.runtime.serving.registry_source import fetch_version
    from framework.runtime.training.run import fill_model_repository
    from framework.contracts.triton import model_file

    uri = tracking.tracking_uri(r, state_dir)
    with tempfile.TemporaryDirectory() as folder:
        path = fetch_version(tracking.client(uri), uri, r.registered_model, version, model_file(r),
                             Path(folder))
        fill_model_repository(r, state_dir, version, path)


def _roll_out_on_cluster(run: ApplyRun) -> None:
    """Serving and the rollout on the same cluster (a Ray Serve recipe)."""
    from framework.runtime.locks import apply_lock
    from framework.runtime.rollout.cluster import cluster_serve_hint, rollout_on_cluster

    proj, r = run.project, run.recipe
    run.serve_hint = cluster_serve_hint(r, run.address)
    if _champion_already(run):
        return
    with apply_lock(proj.state_dir, r.name):
        run.rollout = rollout_on_cluster(r, proj.root, run.env_dir, proj.state_dir, run.address,
                                         head_shares_disk=run.head_shares_disk, console=run.console)


PIPELINES = {
    "local": Pipeline((Stage(generate_files, (GENERATE,)), Stage(_feature_store, FEATURE_STORE),
                       Stage(_train_here, TRAINING_JOB),
                       Stage(_roll_out_here, (ROLLOUT,))), statuses=_statuses),
    "ray": Pipeline((Stage(generate_files, (GENERATE,)), Stage(_feature_store, FEATURE_STORE),
                     Stage(_train_on_cluster, TRAINING_JOB),
                     Stage(_roll_out_on_cluster, (ROLLOUT,))), check=_check_cluster, statuses=_statuses),
}
