"""The local rollout after apply: the rollout repository of the champion and the
candidate, an embedded server on it, synthetic traffic from the validation rows, and
the Controller (controller.py) walking the recipe's strategy; a rollout with nothing
to walk (no champion yet, the candidate already is it) is recorded at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from framework.errors import MlopsError, Problem
from framework.runtime.rollout import state as st
from framework.runtime.rollout.controller import Controller, RolloutResult
from framework.contracts.rollout_record import new_record


def _record_only(recipe, state_path: Path, champion, candidate, status, decision, reasons, *,
                 model: str | None = None) -> RolloutResult:
    """The record of a rollout with nothing to walk (no champion yet, or the candidate
    already is it): decided at once, no traffic."""
    record = new_record(recipe, champion=champion, candidate=candidate, model=model, status=status, decision=decision,
                        decided_by="controller" if decision else None, reasons=reasons,
                        weight=100.0 if status == "promoted" else 0.0, finished=True)
    st.write_state(state_path, record)
    return RolloutResult(recipe.name, recipe.environment, recipe.rollout.strategy, champion, candidate, status,
                         reasons, [], 0, state_path)


def validation_rows(recipe, root: Path):
    """(request tensors, labels) of the validation rows of the recipe's data: the raw
    columns as a client sends them (the model signature's inputs), the labels as training
    saw them (class indices or values), through the split training used."""
    from framework.runtime.training import data, splitting
    from framework.runtime.training.features import FeaturePipeline

    frame = data.load_table(recipe, Path(root))
    train_df, val_df = (part.reset_index(drop=True) for part in splitting.split(recipe, frame))
    pipeline = FeaturePipeline.fit(recipe, train_df)
    return pipeline.raw_inputs(val_df), pipeline.targets(val_df)


def validation_features(recipe, root: Path):
    return validation_rows(recipe, root)[0]


def rollout_repository(recipe, state_dir: Path, model: str, versions: list[str], purpose: str = "rollouts") -> Path:
    """A model repository with exactly `versions` of the recipe's model, for the local
    rollout's server (`mlops serve`'s: purpose "serve"):
    `<state_dir>/<purpose>/<recipe>/<env>/model_repository/`. Files come from apply's
    model repository when there, else from the registry."""
    import shutil

    from framework.contracts.triton import model_file
    from framework.runtime import tracking
    from framework.runtime.serving.registry_source import fetch_version

    state_dir = Path(state_dir)
    filename = model_file(recipe)
    root = state_dir / purpose / recipe.name / recipe.environment / "model_repository"
    model_dir = root / model
    if model_dir.exists():
        shutil.rmtree(model_dir)
    model_dir.mkdir(parents=True)
    uri = tracking.tracking_uri(recipe, state_dir)
    for version in versions:
        target = model_dir / str(version) / filename
        target.parent.mkdir(parents=True)
        found = None
        for source in (state_dir / "model_repository", state_dir / "serving" / "model_repository"):
            if (source / model / str(version) / filename).is_file():
                found = source / model / str(version) / filename
                break
        if found is not None:
            try:
                target.hardlink_to(found)
            except OSError:
                shutil.copyfile(found, target)
            continue
        fetch_version(tracking.client(uri), uri, recipe.registered_model, str(version), filename, target.parent)
    if recipe.serving.backend == "triton":  # Triton's layout: its config, serving exactly these versions
        from framework.runtime.serving.model_config import write_config

        write_config(model_dir, recipe, versions)
    return root  # the app serves it with model_config(recipe, versions) (build_app's `versions`)


def rollout_local(
    recipe,
    state_dir: Path,
    root: Path | None = None,
    *,
    features=None,
    labels=None,
    console=None,
    concurrency: int = 4,
    seed: int = 0,
    on_app: Callable[[Any], None] | None = None,
    **controller_options,
) -> RolloutResult:
    """Roll the registry's `candidate` out against its `champion` on the embedded host.

    No champion yet: the candidate becomes it. Candidate already champion: nothing to do.
    Else the recipe's router serves both versions (rollout_repository) on 127.0.0.1, and
    synthetic traffic from `features` (default: the validation rows of the recipe's data,
    read from `root`) drives the Controller; a bandit on `reward: feedback` gets each
    answer scored against `labels` (default: those rows' labels) through the feedback
    route. `on_app(app)` runs before the server starts (tests slow a version down there)."""
    from framework.contracts.triton import model_name
    from framework.runtime import tracking
    from framework.runtime.serving.routers import make_router
    from framework.runtime.rollout.traffic import SyntheticTraffic
    from framework.runtime.serving.host import EmbeddedServer, build_app

    state_dir = Path(state_dir).resolve()
    uri = tracking.tracking_uri(recipe, state_dir)
    name = recipe.registered_model
    found = st.aliases(name, uri=uri)
    champion, candidate = found[st.ALIAS_CHAMPION], found[st.ALIAS_CANDIDATE]
    path = st.state_path(state_dir, recipe.name, recipe.environment)
    say = (lambda line: console.print(line, markup=False, highlight=False)) if console is not None else None
    if candidate is None:
        raise MlopsError([Problem(None, "rollout", f"no version of '{name}' has alias candidate in {uri}: "
                                                   f"run `mlops apply {recipe.name}` first")])
    if champion is None:
        st.promote_version(name, candidate, uri=uri)
        result = _record_only(recipe, path, None, candidate, "promoted", "promote",
                              [f"no champion yet: version {candidate} becomes the champion"], model=model_name(recipe))
    elif champion == candidate:
        result = _record_only(recipe, path, champion, candidate, "unchanged", None,
                              [f"version {candidate} is already the champion"], model=model_name(recipe))
    elif recipe.rollout.strategy == "direct":
        router = make_router(recipe.rollout, model_name(recipe), champion, candidate, seed=seed)
        result = Controller(recipe, uri=uri, router=router, traffic=lambda n, h=None: None, champion=champion,
                            candidate=candidate, state_path=path, model=model_name(recipe), on_event=say).run()
    else:
        model = model_name(recipe)
        if features is None:
            features, labels = validation_rows(recipe, root or Path.cwd())
        scoring = {}
        if getattr(recipe.rollout, "reward", None) == "feedback" and labels is not None:
            from framework.runtime.rollout.traffic import reward_for

            scoring = {"labels": labels, "reward": reward_for(recipe.model.task, labels)}
        repository = rollout_repository(recipe, state_dir, model, [champion, candidate])
        router = make_router(recipe.rollout, model, champion, candidate, seed=seed)
        app = build_app(recipe, repository, state_dir, router=router, log_sample_rate=0, versions=[champion, candidate],
                        root=root)
        if on_app is not None:
            on_app(app)
        with EmbeddedServer(app) as server:
            traffic = SyntheticTraffic(server.url, model, features, concurrency=concurrency, seed=seed, **scoring)
            result = Controller(recipe, uri=uri, router=router, traffic=traffic, champion=champion,
                                candidate=candidate, state_path=path, model=model, on_event=say,
                                **controller_options).run()
    if say is not None and result.requests == 0:
        say(f"rollout {result.strategy}: {result.reasons[0]}")
    return result


__all__ = ["rollout_local", "rollout_repository", "validation_rows", "validation_features"]
