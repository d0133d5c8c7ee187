"""`data.version`: the data read at a revision of the project's git repository through
DVC (`dvc.api.open`): a file DVC tracks comes from the local cache or the remote
(`data.version.remote`, else the repository's default remote), a file git tracks from
the commit itself. What it resolves to is recorded: the commit and DVC's md5 of the
file at that revision (data_version.py). DVC is an optional extra, imported here only."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import yaml

from framework.errors import Location, Problem
from framework.runtime.training.data_report import DataError

KEY = "data.version"
# A job on a Ray cluster runs in an upload of the project, without its .git: the submitter
# reads the file at the revision, puts it in the upload and names its version here.
PINNED_ENV = "MLOPS_DATA_AT_REVISION"
_LAST_READ: dict[tuple[str, str, str, str | None], bytes] = {}  # the data step and the version tags read it once


def _error(key: str, message: str, where: str | None = None) -> DataError:
    return DataError([Problem(Location(where) if where else None, key, message)])


def git(cwd: Path, *args: str) -> str | None:
    """git's output in cwd; None outside a repository, without git, or on any error."""
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def locate(recipe, root: Path) -> tuple[Path, str]:
    """(the git repository's top folder, the data file's path in it)."""
    top = git(Path(root), "rev-parse", "--show-toplevel")
    if not top:
        raise _error(KEY, f"data.version reads the data at a git revision, but {root} is not in a git repository")
    path = (Path(root) / recipe.data.source.uri).resolve()
    try:
        return Path(top), path.relative_to(Path(top).resolve()).as_posix()
    except ValueError:
        raise _error("data.source.uri", f"{path} is outside the git repository {top}", recipe.data.source.uri) from None


def commit_of(recipe, root: Path) -> str:
    """The commit `data.version.rev` names."""
    top, _ = locate(recipe, root)
    rev = recipe.data.version.rev
    commit = git(top, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    if not commit:
        raise _error(f"{KEY}.rev", f"unknown git revision '{rev}' in {top}")
    return commit


def dvc_md5_at(recipe, root: Path) -> str | None:
    """The md5 DVC recorded for the file at the revision (`<file>.dvc` there); None when
    git tracks the file itself."""
    top, path = locate(recipe, root)
    return pointer_md5(git(top, "show", f"{commit_of(recipe, root)}:{path}.dvc"), Path(path).name)


def pointer_md5(text: str | None, name: str) -> str | None:
    """The md5 a DVC pointer (`<file>.dvc`'s text) records for the file `name`."""
    try:
        outs = (yaml.safe_load(text or "") or {}).get("outs") or []
    except (yaml.YAMLError, AttributeError):
        return None
    return next((str(o["md5"]) for o in outs if isinstance(o, dict) and o.get("path") == name and o.get("md5")), None)


def read_at_revision(recipe, root: Path) -> bytes:
    """The bytes of data.source.uri at data.version.rev (from DVC's cache or remote)."""
    try:
        import dvc.api
        from dvc.config import RemoteNotFoundError
        from dvc.exceptions import DvcException, PathMissingError
        from dvc.scm import RevError
    except ImportError:
        raise _error(KEY, "data.version needs DVC: pip install -e '.[dvc]'") from None
    top, path = locate(recipe, root)
    version = recipe.data.version
    commit_of(recipe, root)  # an unknown revision is named before DVC looks for it
    which = (str(top), path, version.rev, version.remote)
    if which in _LAST_READ:
        return _LAST_READ[which]
    try:
        with dvc.api.open(path, repo=str(top), rev=version.rev, remote=version.remote, mode="rb") as stream:
            raw = stream.read()
    except RevError:
        raise _error(f"{KEY}.rev", f"unknown git revision '{version.rev}' in {top}") from None
    except RemoteNotFoundError:
        raise _error(f"{KEY}.remote", f"no DVC remote '{version.remote}' in {top}: `dvc remote list` shows them") from None
    except PathMissingError:
        md5 = dvc_md5_at(recipe, root)
        if md5 is not None:  # DVC's pointer is there, its data is not
            raise _error(KEY, f"{path} at {version.rev} is tracked by DVC (md5 {md5}) but neither the local cache nor "
                              "the remote has it: `dvc push` it from where it was added") from None
        raise _error("data.source.uri", f"{path} is tracked neither by DVC nor by git at revision {version.rev}",
                     recipe.data.source.uri) from None
    except DvcException as exc:  # not in the cache nor the remote, an unreachable remote, ...
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise _error(KEY, f"cannot read {path} at revision {version.rev}: {first}") from None
    _LAST_READ.clear()  # one file's bytes at a time
    _LAST_READ[which] = raw
    return raw


def pinned_tags() -> dict[str, str] | None:
    """The version the submitter pinned for this job, if it did."""
    text = os.environ.get(PINNED_ENV)
    return json.loads(text) if text else None
