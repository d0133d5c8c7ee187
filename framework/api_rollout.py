"""The Python API of moving a rollout by hand (`mlops rollout status|promote|rollback`),
re-exported by framework.api: the registry's aliases and the rollout record.

Each returns a result object or raises an `MlopsError`; nothing here prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from framework.errors import MlopsError, Problem
from framework.project import Project

__all__ = ["RolloutStatus", "RolloutChange", "rollout_status", "rollout_promote", "rollout_rollback"]


@dataclass(frozen=True)
class RolloutStatus:
    recipe: str
    env: str
    registered_model: str
    tracking_uri: str
    champion: str | None  # versions the MLflow aliases point at
    candidate: str | None
    rejected: str | None
    state: dict[str, Any] | None  # the rollout record (.mlops/rollouts/<recipe>/<env>.json)
    state_path: Path
    cluster: str | None = None  # the application on a Ray cluster (--address)


@dataclass(frozen=True)
class RolloutChange:
    recipe: str
    env: str
    registered_model: str
    action: str  # promote | rollback
    version: str  # the candidate moved
    champion: str | None  # after the change
    previous_champion: str | None
    state_path: Path


def _rollout_context(recipe: str, env: str | None, project: Project | Path | None):
    from framework.runtime import tracking
    from framework.runtime.rollout import state as st

    from framework.api import _project, load_recipe

    proj = _project(project)
    r = load_recipe(recipe, env, (), proj).recipe
    uri = tracking.tracking_uri(r, proj.state_dir)
    return r, uri, st.aliases(r.registered_model, uri=uri), st.state_path(proj.state_dir, r.name, r.environment)


def rollout_status(recipe: str, env: str | None = None, project: Project | Path | None = None,
                   address: str | None = None) -> RolloutStatus:
    """The registry's champion, candidate and rejected versions and the rollout record;
    with `address`, the recipe's application on that Ray cluster too."""
    from framework.runtime.rollout import state as st

    r, uri, found, path = _rollout_context(recipe, env, project)
    cluster = None
    if address is not None:
        from framework.runtime.rollout.cluster import cluster_status

        cluster = cluster_status(r, address)
    return RolloutStatus(
        r.name, r.environment, r.registered_model, uri,
        found[st.ALIAS_CHAMPION], found[st.ALIAS_CANDIDATE], found[st.ALIAS_REJECTED], st.read_state(path), path,
        cluster,
    )


def _candidate_or_fail(r: Any, uri: str, found: dict[str, str | None], action: str) -> str:
    from framework.runtime.rollout import state as st

    candidate, champion = found[st.ALIAS_CANDIDATE], found[st.ALIAS_CHAMPION]
    if candidate is None:
        message = (f"nothing to {action}: no version of '{r.registered_model}' has alias candidate in {uri}; "
                   f"run `mlops apply {r.name}` first")
        raise MlopsError([Problem(None, "rollout", message)])
    if candidate == champion:
        message = f"nothing to {action}: the candidate, version {candidate} of '{r.registered_model}', is already the champion"
        raise MlopsError([Problem(None, "rollout", message)])
    return candidate


def rollout_promote(recipe: str, env: str | None = None, project: Project | Path | None = None) -> RolloutChange:
    """Point alias `champion` at the candidate and record it; MlopsError when there is
    no candidate or it already is the champion."""
    from framework.runtime.rollout import state as st

    r, uri, found, path = _rollout_context(recipe, env, project)
    candidate = _candidate_or_fail(r, uri, found, "promote")
    st.promote_version(r.registered_model, candidate, uri=uri)
    st.record_manual(path, r, found[st.ALIAS_CHAMPION], candidate, "promote")
    return RolloutChange(r.name, r.environment, r.registered_model, "promote", candidate, candidate,
                         found[st.ALIAS_CHAMPION], path)


def rollout_rollback(recipe: str, env: str | None = None, project: Project | Path | None = None) -> RolloutChange:
    """Point alias `rejected` at the candidate, leave the champion, and record it;
    MlopsError when there is no candidate or it is the champion."""
    from framework.runtime.rollout import state as st

    r, uri, found, path = _rollout_context(recipe, env, project)
    candidate = _candidate_or_fail(r, uri, found, "roll back")
    st.reject_version(r.registered_model, candidate, uri=uri)
    st.record_manual(path, r, found[st.ALIAS_CHAMPION], candidate, "rollback")
    return RolloutChange(r.name, r.environment, r.registered_model, "rollback", candidate, found[st.ALIAS_CHAMPION],
                         found[st.ALIAS_CHAMPION], path)
