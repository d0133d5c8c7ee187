"""A cache hit's outputs, as the training job would have left them: the outcome (run,
version, validation metrics), the aliases apply moves, and the Triton model repository
filled with the version's file."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from framework.contracts.registry import ALIAS_CANDIDATE, ALIAS_CHAMPION
from framework.runtime.stepcache.probe import Probe


def reuse(recipe: Any, found: Probe, state_dir: Path, register_only: bool = False):
    """The Outcome of the run `found` hit, its aliases moved as a new version's would be
    (none with `register_only`)."""
    from framework.runtime.training.run import Outcome, fill_model_repository

    hit = found.hit
    metrics = {k: hit.run.metrics[f"val_{k}"] for k in recipe.evaluation.metrics if f"val_{k}" in hit.run.metrics}
    outcome = Outcome(recipe.name, recipe.environment, run_id=hit.run.run_id, model_version=hit.version,
                      metrics=metrics, gates_passed=True, run_dir=_local(hit.run.artifact_uri), tracking_uri=hit.uri,
                      cached=True)
    if not register_only:
        outcome.aliases = _point_aliases(recipe, found)
    if recipe.serving.backend == "triton":
        with tempfile.TemporaryDirectory() as folder:
            outcome.model_repository = fill_model_repository(recipe, state_dir, hit.version,
                                                             _model_file(recipe, hit, Path(folder)))
    return outcome


def already_champion(found: Probe) -> bool:
    """The hit's version serves already: the rollout has nothing to do."""
    return found.hit is not None and found.aliases.get(ALIAS_CHAMPION) == found.hit.version


def _point_aliases(recipe: Any, found: Probe) -> list[str]:
    """candidate (and champion with rollout direct) at the version, unless it is the
    champion already; returns the rollout aliases that point at it afterwards."""
    from framework.runtime.tracking import set_alias

    version, aliases = found.hit.version, dict(found.aliases)
    wanted = [] if already_champion(found) else [ALIAS_CANDIDATE] + (
        [ALIAS_CHAMPION] if recipe.rollout.strategy == "direct" else [])
    for alias in wanted:
        if aliases.get(alias) != version:
            set_alias(recipe.registered_model, alias, version, uri=found.uri)
            aliases[alias] = version
    return [alias for alias in (ALIAS_CANDIDATE, ALIAS_CHAMPION) if aliases.get(alias) == version]


def _local(uri: str) -> Path | None:
    parsed = urlparse(uri)
    return Path(unquote(parsed.path)) if parsed.scheme in ("", "file") else None


def _model_file(recipe: Any, hit: Any, folder: Path) -> Path:
    """The version's served file: read in place from a local artifact store, else
    downloaded from the registry."""
    from framework.contracts.triton import model_file

    name = model_file(recipe)
    local = _local(hit.source)
    if local is not None and (local / name).is_file():
        return local / name
    from framework.runtime import tracking
    from framework.runtime.serving.registry_source import fetch_version

    return fetch_version(tracking.client(hit.uri), hit.uri, recipe.registered_model, hit.version, name, folder)
