"""The apply steps of a Feast recipe: `feast apply` (the repository's definitions into
the registry, after checking them against the recipe with the rules `validate` used) and
materialisation (the view's rows up to now into the online store)."""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from framework.errors import Location, MlopsError, Problem
from framework.recipe.feast_catalog import Catalog, View, problems
from framework.runtime.features.store import KEY, import_feast, open_store, quietly, repo_dir


@dataclass(frozen=True)
class Registered:
    project: str
    registry: str
    entities: int
    views: int


@contextlib.contextmanager
def _inside(repo: Path):
    """Feast imports a repository's files as top-level modules of its folder (what the
    `feast` CLI does with its working directory): enter it, and leave no module behind so
    the next apply reads the files afresh."""
    before_cwd, before_path, before_modules = os.getcwd(), list(sys.path), set(sys.modules)
    os.chdir(repo)
    sys.path.insert(0, str(repo))
    try:
        yield
    finally:
        os.chdir(before_cwd)
        sys.path[:] = before_path
        for name in set(sys.modules) - before_modules:
            module = sys.modules.get(name)
            if str(getattr(module, "__file__", "") or "").startswith(str(repo)):
                del sys.modules[name]


def catalog_of(contents) -> Catalog:
    """The catalog `validate` reads with ast, from the objects Feast parsed."""
    keys = {entity.name: (entity.join_key,) for entity in contents.entities}
    catalog = Catalog()
    for view in contents.feature_views:
        join_keys = tuple(k for name in view.entities for k in keys.get(name, (name,)))
        catalog.views[view.name] = View(view.name, join_keys, tuple(f.name for f in view.features
                                                                     if f.name not in join_keys))
    return catalog


def register(recipe, root: Path) -> Registered:
    """`feast apply` of the recipe's repository into its registry."""
    import_feast()
    from feast.repo_operations import apply_total, parse_repo

    repo = repo_dir(recipe, root).resolve()
    store = open_store(recipe, root)
    with _inside(repo):
        try:
            contents = parse_repo(repo)
        except Exception as exc:  # the user's definitions failed to import: name the file, not our stack
            raise MlopsError([Problem(Location(str(repo)), f"{KEY}.repo",
                                     f"Feast could not read the definitions: {type(exc).__name__}: {exc}")]) from None
        found = problems(recipe.data.source.feast, recipe.data, catalog_of(contents), str(repo))
        if found:
            raise MlopsError([Problem(None, key, message) for key, message in found])
        quietly(apply_total, store.config, repo, skip_source_validation=False)
    entities = [e for e in contents.entities if not e.name.startswith("__")]  # Feast adds a __dummy entity
    return Registered(store.config.project, str(store.config.registry.path), len(entities), len(contents.feature_views))


def materialize(recipe, root: Path, until: datetime | None = None) -> datetime:
    """The view's rows from its last materialisation (or its ttl back) up to `until`
    (now) into the online store; returns `until`."""
    until = until or datetime.now(timezone.utc)
    store = open_store(recipe, root)
    view = recipe.data.source.feast.feature_view
    with _inside(repo_dir(recipe, root).resolve()):  # the views' FileSources are relative to the repository
        quietly(store.materialize_incremental, end_date=until, feature_views=[view])
    return until


def carry_registry(recipe, root: Path, upload: Path) -> Path | None:
    """A registry file in the checkout (dev's `data/registry.db`) is git-ignored, so Ray's
    upload of the project leaves it out: copy it into a job's `upload` (which mirrors
    `root`), where the job's join reads it. Returns the copy; None for a shared registry."""
    import shutil

    from framework.recipe.checks import is_relative_uri

    registry = Path(recipe.data.source.feast.registry)
    if not is_relative_uri(str(registry)):
        return None
    source = repo_dir(recipe, root) / registry
    target = Path(upload) / source.relative_to(Path(root))
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target)
    return target
