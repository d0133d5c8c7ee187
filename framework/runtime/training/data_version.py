"""The version of the data a run trained on, recorded for every run with DVC or without:
the sha256 of the bytes of `data.source` (what was read, so two runs on different rows
never share it; at `data.version.rev` when the recipe names one), the git commit that
last changed the file and whether the working copy differs from it, and the md5 DVC
records when a `<file>.dvc` tracks it. Training tags the MLflow run and the model
version with it (`mlops.data.*`)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from framework.errors import MlopsError, Problem
from framework.runtime.training.data_revision import git, pointer_md5

CHUNK = 1 << 20
DATA_TAG = "mlops.data."  # the prefix of every tag below
TAG_SHA256 = DATA_TAG + "sha256"
TAG_REV = DATA_TAG + "rev"  # the git commit of the file; "+dirty" when the working copy differs
TAG_DVC_MD5 = DATA_TAG + "dvc_md5"
TAG_URI = DATA_TAG + "uri"
TAG_FEAST = DATA_TAG + "feast"  # project:view the features were joined from
TAG_TABLE_SHA256 = DATA_TAG + "table_sha256"  # of the joined table: the file holds only the label rows


@dataclass(frozen=True)
class DataVersion:
    uri: str
    sha256: str
    rev: str | None = None  # None: not in a git repository, or the file is not committed
    dvc_md5: str | None = None
    feast: str | None = None
    table_sha256: str | None = None

    def tags(self) -> dict[str, str]:
        tags = {TAG_URI: self.uri, TAG_SHA256: self.sha256}
        if self.feast:
            tags[TAG_FEAST] = self.feast
            tags[TAG_TABLE_SHA256] = self.table_sha256
        if self.rev:
            tags[TAG_REV] = self.rev
        if self.dvc_md5:
            tags[TAG_DVC_MD5] = self.dvc_md5
        return tags


def data_version(recipe, root: Path, table=None) -> DataVersion:
    """The version of `data.source` as training reads it (a local path or any fsspec URI);
    with `data.source.feast`, also the view and the sha256 of the joined `table` (the
    features come from the feature store, not from the file)."""
    version = _file_version(recipe, root)
    feast = recipe.data.source.feast
    if feast is None or table is None:
        return version
    import dataclasses

    import pandas as pd

    from framework.contracts.feast import project_name

    digest = hashlib.sha256(pd.util.hash_pandas_object(table, index=False).to_numpy().tobytes()).hexdigest()
    return dataclasses.replace(version, feast=f"{project_name(recipe)}:{feast.feature_view}", table_sha256=digest)


def _file_version(recipe, root: Path) -> DataVersion:
    from framework.runtime.training.data_source import resolve_uri

    uri = recipe.data.source.uri
    pinned = data_revision_pinned(recipe, root)
    if pinned is not None:
        return pinned
    if recipe.data.version is not None:  # the bytes at the revision, and the commit it names
        from framework.runtime.training import data_revision

        digest = hashlib.sha256(data_revision.read_at_revision(recipe, root)).hexdigest()
        return DataVersion(uri, digest, data_revision.commit_of(recipe, root), data_revision.dvc_md5_at(recipe, root))
    scheme, target = resolve_uri(uri, Path(root))
    if scheme:
        import fsspec

        with fsspec.open(uri, "rb") as stream:
            return DataVersion(uri, _sha256(stream))
    with open(target, "rb") as stream:
        digest = _sha256(stream)
    return DataVersion(uri, digest, _git_rev(Path(target)), _dvc_md5(Path(target)))


def data_revision_pinned(recipe, root: Path) -> DataVersion | None:
    """The version a cluster job's submitter pinned (data_revision.pin_for_job), once the
    file the job read is checked to be those bytes."""
    from framework.runtime.training.data_revision import pinned_tags
    from framework.runtime.training.data_source import resolve_uri

    tags = pinned_tags() if recipe.data.version is not None else None
    if tags is None:
        return None
    _, target = resolve_uri(recipe.data.source.uri, Path(root))
    with open(target, "rb") as stream:
        digest = _sha256(stream)
    if digest != tags.get(TAG_SHA256):
        raise MlopsError([Problem(None, "data.version", f"{target} is not the file the submitter pinned at "
                                  f"data.version.rev (sha256 {digest}, pinned {tags.get(TAG_SHA256)})")])
    return DataVersion(tags[TAG_URI], digest, tags.get(TAG_REV), tags.get(TAG_DVC_MD5))


def _sha256(stream) -> str:
    digest = hashlib.sha256()
    for chunk in iter(lambda: stream.read(CHUNK), b""):
        digest.update(chunk)
    return digest.hexdigest()


def _git_rev(path: Path) -> str | None:
    """The last commit that changed the file, "+dirty" when the working copy differs from
    it; None outside a repository or for a file git does not track."""
    commit = git(path.parent, "log", "-1", "--format=%H", "--", path.name)
    if not commit:
        return None
    changed = git(path.parent, "status", "--porcelain", "--", path.name)
    return commit + ("+dirty" if changed else "")


def _dvc_md5(path: Path) -> str | None:
    """The md5 `dvc add` recorded for the file in `<file>.dvc`, if DVC tracks it."""
    try:
        return pointer_md5(path.with_name(path.name + ".dvc").read_text(encoding="utf-8"), path.name)
    except OSError:
        return None


def version_data(tags: dict[str, str]) -> dict[str, str]:
    """The data version among a run's or model version's tags, without the prefix
    (uri, sha256, rev, dvc_md5)."""
    return {key.removeprefix(DATA_TAG): value for key, value in tags.items() if key.startswith(DATA_TAG)}


def pin_for_job(recipe, root: Path, upload: Path) -> dict[str, str]:
    """Write data.source.uri as it is at data.version.rev into a job's upload of the
    project (`upload` mirrors `root`), and return the env var that hands the job its version
    (the tags it records), so the job reads that file and never asks git or DVC."""
    from framework.runtime.training.data_revision import PINNED_ENV, read_at_revision

    raw = read_at_revision(recipe, root)
    target = Path(upload) / recipe.data.source.uri
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(raw)
    return {PINNED_ENV: json.dumps(data_version(recipe, root).tags(), sort_keys=True)}
