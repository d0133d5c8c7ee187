"""The FeatureStore of a recipe, built from the same `feature_store.yaml` mapping that
`generate` writes (contracts/feast.py), with `${VAR}` references expanded from the
environment as Feast does when it reads the file. Relative paths (the registry, the
sqlite online store, the views' FileSources) are relative to the feature repository."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from framework.contracts.feast import feature_store_config
from framework.errors import Location, MlopsError, Problem

KEY = "data.source.feast"
EXTRA = "pip install -e '.[feast]'"


# feast.metrics (imported with feast) puts prometheus_client into multiprocess mode for
# the whole process and its children, through these variables, when they are unset: the
# serving app's own metrics and the Ray processes an apply starts later would then keep
# their values in files of a temporary folder Feast deletes at exit.
_PROMETHEUS_MULTIPROCESS = ("PROMETHEUS_MULTIPROCESS_DIR", "PROMETHEUS_MULTIPROC_DIR")


def import_feast():
    """feast, without the process-wide side effect above; or the error naming the extra."""
    import prometheus_client  # noqa: F401 - fixes its value class (in-process) before feast.metrics can

    before = {name: os.environ.get(name) for name in _PROMETHEUS_MULTIPROCESS}
    try:
        import feast
        import feast.metrics  # noqa: F401 - what sets the variables, imported here while we watch
    except ImportError:
        raise MlopsError([Problem(None, KEY, f"reading a Feast feature view needs the feast extra: {EXTRA}")]) from None
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
    return feast


def repo_dir(recipe, root: Path) -> Path:
    repo = Path(recipe.data.source.feast.repo)
    return repo if repo.is_absolute() else Path(root) / repo


def _expanded(value: Any) -> Any:
    if isinstance(value, str):
        return os.path.expandvars(value)
    if isinstance(value, dict):
        return {k: _expanded(v) for k, v in value.items()}
    return value


def open_store(recipe, root: Path):
    """The recipe's FeatureStore. A missing repository is the recipe's error; an unset
    secret variable is named before Feast tries to connect with `${VAR}` as a password."""
    import_feast()
    from feast import FeatureStore
    from feast.repo_config import RepoConfig

    repo = repo_dir(recipe, root)
    if not repo.is_dir():
        raise MlopsError([Problem(Location(str(repo)), f"{KEY}.repo", f"no Feast repository at {repo}")])
    config = _expanded(feature_store_config(recipe))
    unset = sorted({part[2:-1] for part in _strings(config) if part.startswith("${") and part.endswith("}")})
    if unset:
        raise MlopsError([Problem(None, f"{KEY}.online_store", f"the environment variable {unset[0]} is not set: it "
                                  "holds the online store's secret (from the Kubernetes Secret the recipe names)")])
    try:
        repo_config = RepoConfig(repo_path=repo, **config)
    except ValueError as exc:  # pydantic's ValidationError: Feast refused a setting
        first = str(exc).splitlines()
        raise MlopsError([Problem(None, KEY, f"Feast refused the store's settings: {' '.join(first[1:3]).strip()}")]) from None
    return FeatureStore(repo_path=str(repo), config=repo_config)


def _strings(value: Any):
    if isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, str):
        yield value


def quietly(function, *args, **kwargs):
    """Run a Feast call whose own printing (click.echo, tqdm bars) would break through the
    apply's progress display; returns its result and what it printed."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        result = function(*args, **kwargs)
    return result, out.getvalue()
