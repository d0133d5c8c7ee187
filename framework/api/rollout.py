"""The API of moving a rollout by hand (`mlops rollout status|promote|rollback`): the
registry's aliases (champion, candidate, rejected) and the rollout record.
`rollout_status` reads them (and, with an address, the application on a Ray cluster);
`rollout_promote` points champion at the candidate and `rollout_rollback` points
rejected at it, each recording the change. Each returns a result (results.py) or
raises an `MlopsError`; nothing here prints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from framework.api.recipes import as_project, load_recipe
from framework.api.results import RolloutChange, RolloutStatus
from framework.errors import MlopsError, Problem
from framework.project import Project


def _rollout_context(recipe: str, env: str | None, project: Project | Path | None):
    from framework.runtime import tracking
    from framework.runtime.rollout import state as st

    proj = as_project(project)
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
        cluster, _data_versions(r.registered_model, uri, {v for v in found.values() if v}),
    )


def _data_versions(name: str, uri: str, versions: set[str]) -> dict[str, dict[str, str]]:
    """version -> the data it was trained on (its mlops.data.* tags, without the prefix)."""
    if not versions:
        return {}
    from framework.runtime import tracking
    from framework.runtime.training.data_version import version_data

    client = tracking.client(uri)
    return {v: version_data(client.get_model_version(name, v).tags) for v in sorted(versions)}


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
