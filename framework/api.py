"""The Python API of the framework; the CLI only calls these functions.

Each returns a result object or raises an `MlopsError` (see errors.py); nothing here
prints. The import-light core: no torch, ray, mlflow, evidently or onnx at import.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from framework.errors import DriftError, Location, MlopsError, Problem
from framework.project import Project, display_path

__all__ = [
    "RecipeStatus", "ValidateResult", "ShowResult", "Leaf", "SchemaResult",
    "load_recipe", "validate", "show", "write_schemas", "check_schemas", "recipe_envs",
    "GenerateResult", "generate", "PlanResult", "plan", "ApplyResult", "apply", "ServeResult", "serve",
    "RolloutStatus", "RolloutChange", "rollout_status", "rollout_promote", "rollout_rollback",
    "DataCheck", "check_data", "evaluate_version", "gate", "smoke", "batch",
]


@dataclass(frozen=True)
class RecipeStatus:
    recipe: str
    env: str | None
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class ValidateResult:
    statuses: list[RecipeStatus]

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.statuses)


@dataclass(frozen=True)
class Leaf:
    path: str  # dotted key path, list items by index
    value: Any
    source: str  # "file:line", "<override>" or "(default)"


@dataclass(frozen=True)
class ShowResult:
    recipe: str
    env: str
    resolved: dict[str, Any]
    leaves: list[Leaf]


@dataclass(frozen=True)
class SchemaResult:
    written: list[Path]
    drifted: list[Path]


def _project(project: Project | Path | None) -> Project:
    if isinstance(project, Project):
        return project
    return Project.discover(project)


def load_recipe(recipe: str, env: str | None = None, overrides: Sequence[str] = (), project: Project | Path | None = None):
    """Compose and validate one recipe; returns `Validated` (composed + Recipe)."""
    from framework.recipe.compose import compose_recipe
    from framework.recipe.validate import validate_composed

    return validate_composed(compose_recipe(_project(project), recipe, env, overrides))


def recipe_envs(recipe: str, project: Project | Path | None = None) -> list[str]:
    """The env overlays a recipe can be composed with (options of its `env` group)."""
    from framework.recipe.compose import locate

    return locate(_project(project), recipe).options("env")


def validate(
    recipes: Sequence[str] = (),
    env: str | None = None,
    overrides: Sequence[str] = (),
    all_envs: bool = False,
    project: Project | Path | None = None,
) -> ValidateResult:
    """Compose and validate recipes (all of the project's when none are named)."""
    proj = _project(project)
    names = list(recipes) or proj.recipe_names()
    if not names:
        raise MlopsError([Problem(Location(display_path(proj.recipes_dir)), "", "no recipes found")])
    statuses = []
    for name in names:
        envs: list[str | None] = [env]
        if all_envs:
            try:
                envs = list(recipe_envs(name, proj)) or [None]
            except MlopsError as error:
                statuses.append(RecipeStatus(name, None, error.problems))
                continue
        for one_env in envs:
            try:
                validated = load_recipe(name, one_env, overrides, proj)
                statuses.append(RecipeStatus(name, validated.recipe.environment))
            except MlopsError as error:
                statuses.append(RecipeStatus(name, one_env, error.problems))
    return ValidateResult(statuses)


def show(recipe: str, env: str | None = None, overrides: Sequence[str] = (), project: Project | Path | None = None) -> ShowResult:
    """The resolved recipe, defaults filled in, and where each key was set."""
    validated = load_recipe(recipe, env, overrides, project)
    resolved = validated.recipe.model_dump(mode="json")
    provenance = validated.composed.provenance
    leaves = [Leaf(path, value, str(provenance.set_by(path) or "(default)")) for path, value in _leaves(resolved)]
    return ShowResult(validated.recipe.name, validated.recipe.environment, resolved, leaves)


def _leaves(tree: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(tree, dict) and tree:
        return [leaf for key, value in tree.items() for leaf in _leaves(value, f"{prefix}.{key}" if prefix else key)]
    if isinstance(tree, list) and tree:
        return [leaf for i, value in enumerate(tree) for leaf in _leaves(value, f"{prefix}.{i}")]
    return [(prefix, tree)]


def write_schemas(project: Project | Path | None = None) -> SchemaResult:
    """Export the recipe language's JSON Schemas into the schemas dir."""
    from framework.fsutil import write_files_atomic
    from framework.recipe.schema import export_schemas

    proj = _project(project)
    files = {proj.schemas_dir / rel: text for rel, text in export_schemas().items()}
    write_files_atomic(files)
    return SchemaResult(sorted(files), [])


def check_schemas(project: Project | Path | None = None) -> SchemaResult:
    """Compare the committed schemas with a fresh export; raises DriftError on drift."""
    from framework.recipe.schema import export_schemas

    proj = _project(project)
    expected = {proj.schemas_dir / rel: text for rel, text in export_schemas().items()}
    drifted = [p for p, text in expected.items() if not p.is_file() or p.read_text(encoding="utf-8") != text]
    known = set(expected)
    stale = [p for p in proj.schemas_dir.rglob("*.schema.json") if p not in known] if proj.schemas_dir.is_dir() else []
    drifted = sorted(drifted + stale)
    if drifted:
        raise DriftError(
            [Problem(Location(display_path(p)), "", "differs from the models: run `mlops schema` and commit") for p in drifted]
        )
    return SchemaResult([], [])


@dataclass(frozen=True)
class GenerateResult:
    recipes: list[tuple[str, str]]  # (recipe, env) rendered
    added: list[Path]
    changed: list[Path]
    removed: list[Path]
    unchanged: int


def generate(
    recipes: Sequence[str] = (),
    env: str | None = None,
    all_envs: bool = False,
    check: bool = False,
    project: Project | Path | None = None,
) -> GenerateResult:
    """Render recipes (all when none are named) into generated/ and the workflows dir.

    With `check`, nothing is written and a DriftError lists what differs (added,
    changed with a short diff, stale). Recipe errors raise before anything is written.
    """
    from framework import generate as gen

    proj = _project(project)
    names = list(recipes) or proj.recipe_names()
    rendered, problems, validated = [], [], {}
    for name in names:
        envs: list[str | None] = list(recipe_envs(name, proj)) if all_envs else [env]
        for one_env in envs or [None]:
            try:
                loaded = load_recipe(name, one_env, (), proj)
                rendered.append(gen.render_env(proj, loaded))
                validated.setdefault(loaded.recipe.name, loaded.recipe)
            except MlopsError as error:
                problems.extend(error.problems)
    if problems:
        raise MlopsError(problems)
    gen.check_no_collisions(rendered)
    expected = gen.expected_outputs(proj, rendered)
    path, text = gen.actionlint_file(proj, _every_recipe(proj, validated))
    expected[path] = text
    everything = not recipes and all_envs
    changes = gen.compare(expected, gen.owned_files(proj, rendered, everything))
    if check and changes.any:
        raise DriftError(gen.drift_problems(changes))
    if not check:
        gen.write(proj, expected, changes)
    unchanged = len(expected) - len(changes.added) - len(changes.changed)
    return GenerateResult([(r.recipe, r.env) for r in rendered], changes.added, changes.changed, changes.removed, unchanged)


def _every_recipe(proj: Project, loaded: dict[str, Any]) -> list[Any]:
    """Every recipe of the project (project-wide files, such as actionlint's config, list
    what all of them use): those rendered, plus the others in their default env."""
    from framework.recipe.compose import locate

    have = {locate(proj, name).file for name in loaded}
    recipes = list(loaded.values())
    for name in proj.recipe_names():
        if locate(proj, name).file in have:
            continue
        try:
            recipes.append(load_recipe(name, None, (), proj).recipe)
        except MlopsError:  # that recipe's own validate/generate reports it; it adds nothing here
            continue
    return recipes


@dataclass(frozen=True)
class PlanResult:
    recipe: str
    env: str
    lines: list[str]  # what would change, in domain terms

    @property
    def changes(self) -> bool:
        return bool(self.lines)


def plan(recipe: str, env: str | None = None, overrides: Sequence[str] = (), project: Project | Path | None = None) -> PlanResult:
    """What generating (and so applying) would change for one recipe and env."""
    from framework.plan import plan_changes

    proj = _project(project)
    validated = load_recipe(recipe, env, overrides, proj)
    return PlanResult(validated.recipe.name, validated.recipe.environment, plan_changes(proj, validated))


@dataclass(frozen=True)
class ApplyResult:
    recipe: str
    env: str
    resolved: Path
    steps: list[str]
    outcome: Any = None  # framework.runtime.training.run.Outcome when it ran here
    job_status: str | None = None  # the Ray job's final status with --target ray
    rollout: Any = None  # framework.runtime.rollout.controller.RolloutResult (local target)
    serve_hint: str = ""  # where to send requests afterwards (local target)
    job_outcome: dict[str, Any] | None = None  # run_id, model_version, ... the Ray job reported (--target ray)
    trained: bool = True  # False: a RAG recipe's index job, which registers no model version


APPLY_STEPS = (
    "generate: write generated/{recipe}/{env}/ (the job reads only what is on disk)",
    "data: load {source}, check data.expectations, the target and the nulls (report under .mlops/runs/)",
    "train: {trainer} on an embedded Ray ({workers} workers), {training}",
    "track: MLflow run in {tracking} (params, per-epoch metrics, data report, model)",
    "evaluate: {metrics} on the validation split; export ONNX; parity <= {atol}",
    "gates: {gates}",
    "register: model version of '{model}', alias candidate{champion}",
    "serve-ready: fill the Triton model repository .mlops/model_repository/",
    "rollout: {strategy} of the candidate against the champion on the embedded server (synthetic traffic "
    "from the validation rows), then promote (alias champion), roll back (alias rejected) or, a bandit's "
    "inconclusive evidence, keep the champion",
)


def apply(
    recipe: str,
    env: str | None = None,
    target: str = "local",
    dry_run: bool = False,
    address: str | None = None,
    project: Project | Path | None = None,
    console: Any = None,
    waits: Any = None,
    register_only: bool = False,
    image_tag: str | None = None,
    skip_training: bool = False,
    training_only: bool = False,
    head_shares_disk: bool = False,
) -> ApplyResult:
    """Generate, then run the recipe's training side (serving and rollout come next):
    here on an embedded Ray (`local`), or as a job on the Ray cluster at `address`;
    `kubernetes` server-side applies the generated manifests to the cluster of the
    current kubeconfig and waits for the job and the serving workloads (`waits`: a
    framework.runtime.kubernetes.apply.Waits).

    CI options: `register_only` registers the trained version without moving an alias
    (`gate` promotes it); `image_tag` and `skip_training` (kubernetes) run deploy.image
    at the tag the pipeline built and leave the training job out (the pipeline trained
    already; the committed manifests keep the recipe's tag); `training_only`
    (kubernetes) applies only what the training job needs (a PyTorchJob recipe's train
    job) and reports the version it registered."""
    proj = _project(project)
    validated = load_recipe(recipe, env, (), proj)
    r = validated.recipe
    if target not in ("local", "ray", "kubernetes"):
        raise MlopsError([Problem(None, "--target", f"unknown target '{target}'; use local, ray or kubernetes")])
    _check_ci_options(target, register_only, image_tag, skip_training, training_only)
    if target == "kubernetes":  # any recipe: what generate wrote, applied in dependency order
        from framework.runtime.kubernetes import apply as kube

        selection = kube.Selection(skip_training, r.deploy.image, image_tag, training_only, register_only)
        resolved = proj.generated_dir / r.name / r.environment / "recipe.resolved.yaml"
        if dry_run:  # the files generate would write, read as apply reads them; nothing written
            from framework.generate import render_env

            steps = kube.plan_steps(render_env(proj, validated).files, waits, selection)
            return ApplyResult(r.name, r.environment, resolved, steps)
        generate([recipe], env=env, project=proj)
        started_ms = int(time.time() * 1000)
        outcome = kube.apply_env_dir(resolved.parent, waits, console, selection)
        registered = None
        if training_only and r.training is not None:
            from framework.runtime.registered import registered_since

            registered = registered_since(r, proj.state_dir, started_ms)
            if registered is None:
                message = (f"the training job finished, but no version of '{r.registered_model}' registered since it "
                           "started carries this recipe's hash: did the job write to another tracking.uri?")
                raise MlopsError([Problem(None, "train", message)])
        return ApplyResult(r.name, r.environment, resolved, [], outcome, job_outcome=registered)
    if r.model.kind == "llm" and r.rag is not None and target == "local":
        return _apply_rag(recipe, env, r, proj, dry_run, console)
    if r.model.kind == "llm" and r.rag is not None and target == "ray" and address:
        return _apply_rag_on_cluster(recipe, env, r, proj, dry_run, console, address, head_shares_disk)
    if r.model.kind != "tabular":
        raise MlopsError([Problem(None, "model.kind", f"apply trains tabular recipes; {r.name} is {r.model.kind}")])
    if target == "ray" and (not address or r.training.engine != "ray"):
        what = "needs --address URL (the cluster's job API, e.g. http://127.0.0.1:8265)" if not address \
            else "submits the generated RayJob: training.engine must be ray"
        raise MlopsError([Problem(None, "--target", f"--target ray {what}")])
    if target == "ray" and not head_shares_disk:
        from framework.runtime.submit import local_store

        if local_store(r):
            store = r.tracking.uri or f"the embedded store {display_path(proj.state_dir / 'mlflow.db')}"
            message = (f"--target ray runs the job on the cluster, which cannot write {store} on this machine: "
                       "set tracking.uri to an MLflow server the cluster reaches (e.g. `mlflow server --host 0.0.0.0 "
                       "--backend-store-uri sqlite:///mlflow.db --artifacts-destination s3://bucket/mlflow`), or "
                       "pass --head-shares-disk when the head sees this project at the same path")
            raise MlopsError([Problem(None, "tracking.uri", message)])
    env_dir = proj.generated_dir / r.name / r.environment
    resolved = env_dir / "recipe.resolved.yaml"
    steps = [_describe_step(step, r, proj) for step in APPLY_STEPS]
    steps[2:2] = _optional_steps(r)
    if register_only:
        steps = [step for step in steps if not step.startswith("rollout:")]
        steps = [s.replace("register: model version", "register (no alias: `mlops gate` promotes it): model version")
                 if s.startswith("register:") else s for s in steps]
    if dry_run:
        return ApplyResult(r.name, r.environment, resolved, steps)
    generate([recipe], env=env, project=proj)
    if target == "ray":
        from framework.runtime.submit import job_spec, snapshot, submit_and_follow
        from framework.runtime.training.run import outcome_from_log

        with snapshot(proj.root) as working_dir:
            spec = job_spec(proj.root, env_dir, proj.state_dir, r, register_only, working_dir=working_dir,
                            head_shares_disk=head_shares_disk)
            status, log = submit_and_follow(address, spec)
        if status != "SUCCEEDED":
            raise MlopsError([Problem(None, "train", f"the Ray job ended {status}: its log is above")])
        job_outcome = outcome_from_log(log)
        if not head_shares_disk and job_outcome and job_outcome.get("model_version") and r.serving.backend == "triton":
            _fetch_model_repository(r, proj.state_dir, str(job_outcome["model_version"]))
        rollout = hint = None
        if r.serving.backend == "ray_serve" and not register_only:  # serving and rollout on the same cluster
            from framework.runtime.locks import apply_lock
            from framework.runtime.rollout.cluster import cluster_serve_hint, rollout_on_cluster

            with apply_lock(proj.state_dir, r.name):
                rollout = rollout_on_cluster(r, proj.root, env_dir, proj.state_dir, address,
                                             head_shares_disk=head_shares_disk, console=console)
            hint = cluster_serve_hint(r, address)
        return ApplyResult(r.name, r.environment, resolved, steps, job_status=status, job_outcome=job_outcome,
                           rollout=rollout, serve_hint=hint or "")
    from framework.runtime.training.run import run_training

    outcome = run_training(resolved, proj.root, proj.state_dir, None, console, register_only=register_only)
    if register_only:
        return ApplyResult(r.name, r.environment, resolved, steps, outcome)
    from framework.runtime.locks import apply_lock
    from framework.runtime.rollout.controller import rollout_local, serve_hint

    with apply_lock(proj.state_dir, r.name):  # run_training released its lock on return
        rollout = rollout_local(r, proj.state_dir, proj.root, console=console)
    return ApplyResult(r.name, r.environment, resolved, steps, outcome, rollout=rollout, serve_hint=serve_hint(r))


def _fetch_model_repository(r: Any, state_dir: Path, version: str) -> None:
    """The version the cluster's job registered, from the registry into this machine's
    Triton model repository (what `mlops serve` and the rollout load), as apply leaves it."""
    import tempfile

    from framework.runtime import tracking
    from framework.runtime.serving.registry_source import fetch_version
    from framework.runtime.training.run import fill_model_repository
    from framework.targets.triton import MODEL_FILES

    uri = tracking.tracking_uri(r, state_dir)
    with tempfile.TemporaryDirectory() as folder:
        path = fetch_version(tracking.client(uri), uri, r.registered_model, version, MODEL_FILES[r.serving.format],
                             Path(folder))
        fill_model_repository(r, state_dir, version, path)


_IMAGE_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")  # the OCI distribution spec's tag


def _check_ci_options(target: str, register_only: bool, image_tag: str | None, skip_training: bool,
                      training_only: bool) -> None:
    problems = []
    if image_tag is not None and target != "kubernetes":
        problems.append(Problem(None, "--image-tag", "sets the image the cluster's manifests run: use it with --target kubernetes"))
    elif image_tag is not None and not _IMAGE_TAG.match(image_tag):
        problems.append(Problem(None, "--image-tag", f"'{image_tag}' is not an image tag (letters, digits, _ . -; at most 128)"))
    for flag, given in (("--skip-training", skip_training), ("--training-only", training_only)):
        if given and target != "kubernetes":
            problems.append(Problem(None, flag, "chooses among the cluster's manifests: use it with --target kubernetes"))
    if skip_training and training_only:
        problems.append(Problem(None, "--training-only", "and --skip-training leave nothing to apply together: use one"))
    if register_only and target == "kubernetes" and not training_only:
        problems.append(Problem(None, "--register-only", "with --target kubernetes applies to the training job alone: "
                                "add --training-only"))
    if problems:
        raise MlopsError(problems)


RAG_STEPS = (
    "generate: write generated/{recipe}/{env}/",
    "index: load rag.documents, split, embed the changed ones with {embedding}, store in {store}",
    "evaluate: retrieval recall@k and MRR on {questions}; check evaluation.gates",
    "generation: {backend} (vLLM with a GPU, else serving.cpu_fallback under transformers), OpenAI routes",
    "serve: the RAG service (POST /query) on the embedded host, asked the first labelled question",
)


def _apply_rag(recipe: str, env: str | None, r: Any, proj: Project, dry_run: bool, console: Any) -> ApplyResult:
    resolved = proj.generated_dir / r.name / r.environment / "recipe.resolved.yaml"
    retrieval = getattr(r.evaluation, "retrieval", None)
    values = {"recipe": r.name, "env": r.environment, "embedding": r.rag.embedding.model,
              "store": r.rag.vector_store.path, "questions": getattr(retrieval, "questions", "the labelled set"),
              "backend": r.serving.backend}
    steps = [step.format(**values) for step in RAG_STEPS]
    if dry_run:
        return ApplyResult(r.name, r.environment, resolved, steps)
    generate([recipe], env=env, project=proj)
    from framework.runtime.rag.local import apply_local, summary

    outcome = apply_local(r, proj.root, proj.state_dir, console)
    return ApplyResult(r.name, r.environment, resolved, steps, outcome, serve_hint=summary(r, outcome))


def _apply_rag_on_cluster(recipe: str, env: str | None, r: Any, proj: Project, dry_run: bool, console: Any,
                          address: str, head_shares_disk: bool) -> ApplyResult:
    from framework.runtime.rag.cluster import apply_rag_on_cluster, check_cluster_rag

    check_cluster_rag(r, address, head_shares_disk)
    env_dir = proj.generated_dir / r.name / r.environment
    steps = [f"index: the RAG index job ({r.rag.vector_store.path}) on the Ray cluster at {address}",
             f"serve: the RAG service (ray/rag_serve_config.yaml) on the cluster, generating through {r.rag.llm_endpoint}"]
    if dry_run:
        return ApplyResult(r.name, r.environment, env_dir / "recipe.resolved.yaml", steps)
    generate([recipe], env=env, project=proj)
    hint = apply_rag_on_cluster(r, proj.root, env_dir, proj.state_dir, address, head_shares_disk=head_shares_disk,
                                console=console)
    return ApplyResult(r.name, r.environment, env_dir / "recipe.resolved.yaml", steps, job_status="SUCCEEDED",
                       serve_hint=hint, trained=False)


def evaluate(recipe: str, env: str | None = None, project: Project | Path | None = None, console: Any = None):
    """`mlops eval`: an LLM recipe's retrieval on its labelled set against evaluation.gates
    (the index is brought up to date first). Returns (RetrievalReport, gate report)."""
    proj = _project(project)
    r = load_recipe(recipe, env, (), proj).recipe
    if r.rag is None:
        raise MlopsError([Problem(None, "rag", f"mlops eval evaluates retrieval; {r.name} has no rag section")])
    from framework.runtime.rag.evaluate import evaluate_retrieval, retrieval_gates
    from framework.runtime.rag.index import index_corpus

    index_corpus(r, proj.root, proj.state_dir, console=console)
    report = evaluate_retrieval(r, proj.root, proj.state_dir, index=False)
    return report, retrieval_gates(r, report)


def _optional_steps(r: Any) -> list[str]:
    """Distillation and HPO run between the data and the final training when set."""
    training, steps = r.training, []
    if training is not None and training.distillation is not None:
        d = training.distillation
        steps.append(f"teacher: soft targets from {d.teacher} (temperature {d.temperature}, alpha {d.alpha})")
    if training is not None and training.hpo is not None:
        h = training.hpo
        steps.append(f"hpo: {h.n_trials} Optuna trials ({h.sampler}, {h.max_concurrent} at once) on Ray Tune over "
                     f"{', '.join(h.search_space)}, {h.direction} {h.metric}; the best values train the final model")
    return steps


def _describe_step(step: str, r: Any, proj: Project) -> str:
    gates = r.evaluation.gates
    named = [f"{k} {v}" for k, v in gates.thresholds().items()]
    named += [f"{k} {getattr(gates, k)}" for k in ("max_latency_p95_ms", "max_model_size_mb") if getattr(gates, k) is not None]
    if gates.fairness:
        named.append(f"fairness {gates.fairness.attribute} <= {gates.fairness.max_disparity}")
    return step.format(
        recipe=r.name, env=r.environment, source=r.data.source.uri if r.data else "-",
        workers=r.training.workers if r.training else 0,
        trainer=_trainer(r), training=_training(r),
        tracking=r.tracking.uri or display_path(proj.state_dir / "mlflow.db"),
        metrics=", ".join(r.evaluation.metrics), atol=gates.onnx_parity_atol, gates=", ".join(named) or "none",
        model=r.registered_model, strategy=r.rollout.strategy, champion=" and champion (rollout direct)" if r.rollout.strategy == "direct" else "",
    )


def _trainer(r: Any) -> str:
    return "Ray Train's LightGBMTrainer" if getattr(r.model, "architecture", None) == "lightgbm" else "Ray Train's TorchTrainer"


def _training(r: Any) -> str:
    """How long it trains and what it keeps, as the step will do it."""
    if r.training is None:
        return "-"
    early = r.training.early_stopping
    if getattr(r.model, "architecture", None) == "lightgbm":
        rounds = r.model.trees.num_boost_round
        stop = f", stopping after {early.patience} rounds without a better validation loss" if early else ""
        return f"up to {rounds} trees{stop}"
    stop = (f", stopping after {early.patience} epochs without a better validation loss (best epoch kept)"
            if early else "")
    return f"up to {r.training.epochs} epochs{stop}, checkpoints every {r.training.checkpoint.every_epochs} epochs"


@dataclass(frozen=True)
class ServeResult:
    recipe: str
    env: str
    url: str
    versions: dict[str, list[str]]  # model -> versions served
    routing: str = ""  # how requests naming no version are routed (LivePlan.describe)


def serve(
    recipe: str,
    env: str | None = None,
    host: str = "127.0.0.1",
    port: int | None = None,
    project: Project | Path | None = None,
    on_ready: Any = None,
    address: str | None = None,
    head_shares_disk: bool = False,
) -> ServeResult:
    """Serve the recipe's model from the local model repository (what `apply` filled;
    for a Ray Serve recipe the registry's champion and candidate) with the serving app
    on the embedded host, in the foreground until Ctrl-C. `port` defaults to
    serving.port; `on_ready(url, versions, routing)` is called once it listens.
    `address`: deploy the recipe's Ray Serve application to that Ray cluster instead
    (the same versions and routing) and return once it runs."""
    proj = _project(project)
    r = load_recipe(recipe, env, (), proj).recipe
    if address is not None:
        return _serve_on_cluster(recipe, env, r, proj, address, head_shares_disk, on_ready)
    if r.model.kind == "llm" and r.rag is not None:
        from framework.runtime.rag.local import serve_forever as serve_rag

        urls: list[str] = []

        def rag_ready(url: str, how: str) -> None:
            urls.append(url)
            if on_ready is not None:
                on_ready(url, {}, how)

        serve_rag(r, proj.root, proj.state_dir, host, port if port is not None else r.serving.port, on_ready=rag_ready)
        return ServeResult(r.name, r.environment, urls[0] if urls else "", {}, "RAG: POST /query")
    if r.model.kind != "tabular":
        message = f"mlops serve runs tabular models and RAG recipes; {r.name} is served by {r.serving.backend} (apply --target kubernetes)"
        raise MlopsError([Problem(None, "model.kind", message)])
    from framework.runtime.rollout.live import live_plan, live_router
    from framework.runtime.serving.host import build_app, serve_forever

    plan = live_plan(r, proj.state_dir)
    if plan.champion is not None:  # exactly the champion (and the candidate in a rollout)
        from framework.runtime.rollout.controller import rollout_repository

        repository = rollout_repository(r, proj.state_dir, plan.model, plan.versions, purpose="serve")
        app = build_app(r, repository, proj.state_dir, router=live_router(r, plan))
    else:  # nothing promoted yet: what apply left, else the registry's candidate
        app = build_app(r, None, proj.state_dir)
    versions = app.repository.versions()
    urls: list[str] = []

    def ready(url: str) -> None:
        urls.append(url)
        if on_ready is not None:
            on_ready(url, versions, plan.describe())

    serve_forever(app, host, port if port is not None else r.serving.port, ready)
    return ServeResult(r.name, r.environment, urls[0] if urls else "", versions, plan.describe())


def _serve_on_cluster(recipe: str, env: str | None, r: Any, proj: Project, address: str, head_shares_disk: bool,
                      on_ready: Any) -> ServeResult:
    if r.serving.backend != "ray_serve":
        message = (f"--address deploys the recipe's Ray Serve application; {r.name} is served by {r.serving.backend} "
                   "(serving.backend ray_serve, or apply --target kubernetes)")
        raise MlopsError([Problem(None, "serving.backend", message)])
    from framework.runtime.rollout.cluster import serve_on_cluster

    generate([recipe], env=env, project=proj)
    url, plan = serve_on_cluster(r, proj.root, proj.generated_dir / r.name / r.environment, proj.state_dir, address,
                                 head_shares_disk=head_shares_disk)
    versions = {plan.model: plan.versions}
    if on_ready is not None:
        on_ready(f"http://{url}", versions, plan.describe())
    return ServeResult(r.name, r.environment, f"http://{url}", versions, plan.describe())


# --- drift (`mlops monitor`) -------------------------------------------------------------
def monitor(
    recipe: str,
    env: str | None = None,
    current: Path | str | None = None,
    window: str | None = None,
    pushgateway: str | None = None,
    project: Project | Path | None = None,
    console: Any = None,
):
    """Drift of served traffic (the request log of `window`, default monitoring.drift.window)
    or of the `current` file against the champion's training reference; returns a
    framework.runtime.monitor.run.MonitorResult (exit_code 0 or 3)."""
    proj = _project(project)
    r = load_recipe(recipe, env, (), proj).recipe
    if r.model.kind != "tabular":
        raise MlopsError([Problem(None, "model.kind", f"mlops monitor checks tabular models; {r.name} is {r.model.kind}")])
    from framework.runtime.monitor.run import monitor as run_monitor

    path = None if current is None else Path(current)
    if path is not None and not path.is_absolute():
        path = Path.cwd() / path
    return run_monitor(r, proj.state_dir, proj.root, current=path, window=window, pushgateway=pushgateway, console=console)


# Moving a rollout by hand, and the commands a CI pipeline chains (check-data, evaluate
# --version, gate, smoke): their own modules, part of this API.
from framework.api_pipeline import DataCheck, batch, check_data, evaluate_version, gate, smoke  # noqa: E402
from framework.api_rollout import (  # noqa: E402
    RolloutChange, RolloutStatus, rollout_promote, rollout_rollback, rollout_status,
)
