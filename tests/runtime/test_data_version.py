"""The data version every run records (training/data_version.py): the bytes' sha256, the
git commit of the file (dirty when the working copy differs), DVC's md5 when a .dvc
pointer tracks it; in a real git repository with two revisions of a data file."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path
from types import SimpleNamespace

from framework.runtime.training.data_version import data_version

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]


def recipe_of(uri: str):
    return SimpleNamespace(data=SimpleNamespace(source=SimpleNamespace(uri=uri, feast=None), version=None))


def git(root: Path, *args: str) -> str:
    return subprocess.run([*GIT, *args], cwd=root, check=True, capture_output=True, text=True).stdout.strip()


def test_each_revision_of_the_data_has_its_own_hash_and_commit(tmp_path: Path) -> None:
    (tmp_path / ".gitignore").write_text(".mlops/\n")
    data = tmp_path / "data" / "rows.csv"
    data.parent.mkdir()
    data.write_text("a,b\n1,2\n")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    git(tmp_path, "commit", "-qm", "first rows")
    first = git(tmp_path, "rev-parse", "HEAD")
    v1 = data_version(recipe_of("data/rows.csv"), tmp_path)
    assert (v1.sha256, v1.rev) == (hashlib.sha256(b"a,b\n1,2\n").hexdigest(), first)

    data.write_text("a,b\n1,2\n3,4\n")  # edited, not committed: the last commit plus "+dirty"
    dirty = data_version(recipe_of("data/rows.csv"), tmp_path)
    assert dirty.rev == f"{first}+dirty" and dirty.sha256 != v1.sha256

    git(tmp_path, "commit", "-qam", "more rows")
    git(tmp_path, "commit", "-q", "--allow-empty", "-m", "a later commit that leaves the data alone")
    v2 = data_version(recipe_of(f"file://{data}"), tmp_path)
    assert v2.rev == git(tmp_path, "rev-parse", "HEAD~1")  # the commit that changed the file
    assert v2.sha256 == dirty.sha256
    assert v2.tags() == {"mlops.data.uri": f"file://{data}", "mlops.data.sha256": v2.sha256, "mlops.data.rev": v2.rev}


def test_outside_git_and_untracked_files_have_no_revision(tmp_path: Path) -> None:
    (tmp_path / "rows.csv").write_text("a\n1\n")
    assert data_version(recipe_of("rows.csv"), tmp_path).rev is None
    git(tmp_path, "init", "-q")
    assert data_version(recipe_of("rows.csv"), tmp_path).rev is None  # in a repository, never added


def test_a_dvc_pointer_gives_the_md5_dvc_recorded(tmp_path: Path) -> None:
    body = b"a\n1\n"
    (tmp_path / "rows.csv").write_bytes(body)
    md5 = hashlib.md5(body).hexdigest()
    (tmp_path / "rows.csv.dvc").write_text(f"outs:\n- md5: {md5}\n  size: {len(body)}\n  hash: md5\n  path: rows.csv\n")
    version = data_version(recipe_of("rows.csv"), tmp_path)
    assert version.dvc_md5 == md5 and version.tags()["mlops.data.dvc_md5"] == md5
    (tmp_path / "rows.csv.dvc").write_text("not: [valid")
    assert data_version(recipe_of("rows.csv"), tmp_path).dvc_md5 is None


def test_lineage_before_any_apply_says_what_to_run(tmp_path: Path, monkeypatch) -> None:
    from tests.conftest import copy_project, run_cli

    root = copy_project(tmp_path, ("recipes", "data"))
    monkeypatch.chdir(root)
    result = run_cli("lineage", "churn")
    assert result.exit_code == 1
    assert "registered_model: no version of 'churn' is registered in sqlite:///" in result.stderr
    assert "run `mlops apply churn` first" in result.stderr and not (root / ".mlops" / "mlflow.db").exists()
