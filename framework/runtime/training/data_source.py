"""`data.source` read into a DataFrame: a path relative to the project or any fsspec URI
(s3://, gs://, ...), csv, parquet or json; a missing filesystem package is named."""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pandas as pd

from framework.errors import Location, Problem
from framework.recipe.suggest import did_you_mean

from framework.runtime.training.data_report import DataError

# fsspec names the package in its ImportError, but not every version does; these are the
# usual ones, so the error can always say what to install.
_FSSPEC_PACKAGES = {"s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs",
                    "abfs": "adlfs", "abfss": "adlfs", "hf": "huggingface_hub", "http": "aiohttp",
                    "https": "aiohttp"}

# ---------------------------------------------------------------- loading


def resolve_uri(uri: str, root: Path) -> tuple[str, str | Path]:
    """(scheme, path or URL): local files become Paths, everything else stays a URL."""
    parsed = urlparse(uri)
    scheme = parsed.scheme.lower()
    if scheme == "file":
        # file:///abs and file://localhost/abs are absolute; file://data/x.csv is read as the
        # relative path people mean when they write it.
        host = "" if parsed.netloc in ("", "localhost") else parsed.netloc
        path = Path(unquote(host + parsed.path) if host else unquote(parsed.path))
        return "", path if path.is_absolute() else root / path
    if len(scheme) <= 1:  # no scheme (or a Windows drive letter): a path
        path = Path(uri)
        return "", path if path.is_absolute() else root / path
    return scheme, uri


def _check_remote_support(scheme: str, uri: str, key: str = "data.source") -> None:
    """A clear error naming the package to install, before pandas fails obscurely."""
    wanted = _FSSPEC_PACKAGES.get(scheme)
    if importlib.util.find_spec("fsspec") is None:
        extra = f" and {wanted}" if wanted else ""
        raise DataError([Problem(Location(uri), f"{key}.uri",
                                 f"reading {scheme}:// URIs needs fsspec{extra}: pip install fsspec{extra.replace(' and', '')}")])
    import fsspec

    try:
        fsspec.get_filesystem_class(scheme)
    except ImportError:
        package = wanted or f"the fsspec implementation of {scheme}://"
        raise DataError([Problem(Location(uri), f"{key}.uri",
                                 f"reading {scheme}:// URIs needs {package}: pip install {package}")]) from None
    except ValueError:
        raise DataError([Problem(Location(uri), f"{key}.uri",
                                 f"unknown URI scheme '{scheme}://'; use a path, file://, s3:// or gs://")]) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def pinned_revision() -> bool:
    """A cluster job whose submitter put the file at data.version.rev in its upload."""
    from framework.runtime.training.data_revision import pinned_tags

    return pinned_tags() is not None


def load_table(recipe: Any, root: Path, source: Any = None, key: str = "data.source") -> pd.DataFrame:
    """Read `data.source` (or `source`, any object with `uri` and `format`, named `key` in
    errors: `evaluation.dataset`) and return its recipe columns (features, target,
    extra_columns) in that order.

    Only the recipe's columns are kept so every later step (checks, duplicates, split,
    training) sees the same table whatever else the file carries.
    """
    data = recipe.data
    if data is None:
        raise DataError([Problem(None, "data", "the recipe has no data section to load")])
    own_source = source is None  # data.source: its report counts the text read as null
    source = source if source is not None else data.source
    uri, fmt = source.uri, source.format
    where = Location(uri)
    scheme, target = resolve_uri(uri, Path(root))
    if own_source and data.version is not None and not pinned_revision():  # the file at a git revision, through DVC
        from framework.runtime.training.data_revision import read_at_revision

        raw = read_at_revision(recipe, Path(root))
        scheme, target = "", None
    elif scheme:
        _check_remote_support(scheme, uri, key)
    elif not target.exists():
        parent = target.parent
        near = did_you_mean(target.name, (p.name for p in parent.iterdir())) if parent.is_dir() else ""
        raise DataError([Problem(where, f"{key}.uri", f"no such file: {target}{near}")])
    elif target.is_dir():
        raise DataError([Problem(where, f"{key}.uri", f"{target} is a directory, not a {fmt} file")])
    readable = (lambda: io.BytesIO(raw)) if target is None else (lambda: target)
    try:
        df = pd.read_csv(readable()) if fmt == "csv" else pd.read_parquet(readable())
    except FileNotFoundError:
        raise DataError([Problem(where, f"{key}.uri", f"no such file: {target}")]) from None
    except Exception as exc:  # pandas/pyarrow raise many types; all mean "not readable as fmt"
        raise DataError([Problem(where, key, f"cannot read as {fmt}: {_first_line(exc)}")]) from None
    df.columns = [str(c) for c in df.columns]  # parquet may carry non-string names
    feast = own_source and data.source.feast is not None
    if feast:  # the file holds the entity/label rows; the features come from the view
        from framework.runtime.features.join import join_features

        df, _ = join_features(recipe, Path(root), df)

    present = list(df.columns)
    problems = []
    for column_key, columns in (("data.features", data.features), ("data.target", [data.target]),
                                ("data.extra_columns", data.extra_columns)):
        for column in columns:
            if column not in present:
                problems.append(Problem(where, column_key, f"column '{column}' is not in {uri}"
                                        f"{did_you_mean(column, present)}; it has: {', '.join(present) or '(none)'}"))
    if problems:
        raise DataError(problems)
    table = df[data.columns()]
    if fmt == "csv" and own_source and not feast:
        from framework.runtime.training.data_nulls import NULL_TEXT, null_text

        table.attrs[NULL_TEXT] = null_text(readable(), df, data.features)
    return table
