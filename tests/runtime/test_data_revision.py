"""`data.version` on a real repository: git, `dvc init`, a local-directory remote, and two
revisions of the churn data. Each revision reads its own rows (from the remote: the
local cache is emptied), and records its own hash, commit and DVC md5; an unknown
revision, a missing remote and a file neither DVC nor git tracks are one line each."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from framework import api
from framework.runtime.training import data
from framework.errors import MlopsError
from framework.runtime.training.data_report import DataError
from framework.runtime.training.data_version import data_version
from tests.conftest import copy_project

DVC = str(Path(sys.executable).with_name("dvc"))
GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]


def run(root: Path, *command: str) -> str:
    return subprocess.run(command, cwd=root, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> dict:
    root = copy_project(tmp_path_factory.mktemp("dvc"), ("recipes", "data"))
    remote = root.parent / "remote"
    (root / ".gitignore").write_text(".mlops/\n__pycache__/\n")
    run(root, *GIT, "init", "-q")
    run(root, DVC, "init", "-q")
    run(root, DVC, "remote", "add", "-d", "storage", str(remote))
    run(root, DVC, "add", "-q", "data/churn.csv")
    run(root, *GIT, "add", "-A")
    run(root, *GIT, "commit", "-qm", "all rows")
    run(root, *GIT, "tag", "v1")
    run(root, DVC, "push", "-q")
    csv = root / "data" / "churn.csv"
    first = csv.read_bytes()
    lines = first.decode().splitlines(keepends=True)
    csv.write_text("".join(lines[: 1 + (len(lines) - 1) // 2]))  # the header and half the rows
    run(root, DVC, "add", "-q", "data/churn.csv")
    run(root, *GIT, "commit", "-qam", "half the rows")
    run(root, *GIT, "tag", "v2")
    run(root, DVC, "push", "-q")
    csv.write_text("".join(lines[:21]))
    run(root, DVC, "add", "-q", "data/churn.csv")
    run(root, *GIT, "commit", "-qam", "twenty rows, never pushed")
    run(root, *GIT, "tag", "v3")
    shutil.rmtree(root / ".dvc" / "cache")  # read from the remote, as a fresh clone would
    csv.write_text("".join(lines[:11]))  # the working copy is neither revision
    return {"root": root, "bytes": {"v1": first, "v2": "".join(lines[: 1 + (len(lines) - 1) // 2]).encode()},
            "rows": {"v1": len(lines) - 1, "v2": (len(lines) - 1) // 2}}


def recipe_at(root: Path, *overrides: str):
    return api.load_recipe("churn", overrides=list(overrides), project=root).recipe


@pytest.mark.parametrize("rev", ["v1", "v2"])
def test_each_revision_reads_its_own_rows_and_records_its_version(repo, rev) -> None:
    root = repo["root"]
    recipe = recipe_at(root, f"+data.version={{rev: {rev}}}")
    assert len(data.load_table(recipe, root)) == repo["rows"][rev]
    version = data_version(recipe, root)
    assert version.sha256 == hashlib.sha256(repo["bytes"][rev]).hexdigest()
    assert version.rev == run(root, "git", "rev-parse", f"{rev}^{{commit}}")
    assert version.dvc_md5 == hashlib.md5(repo["bytes"][rev]).hexdigest()  # what `dvc add` recorded at rev


def test_the_named_remote_is_the_one_read(repo) -> None:
    root = repo["root"]
    recipe = recipe_at(root, "+data.version={rev: v1, remote: storage}")
    assert len(data.load_table(recipe, root)) == repo["rows"]["v1"]


@pytest.mark.parametrize(("overrides", "message"), [
    (["+data.version={rev: v9}"], r"^data\.version\.rev: unknown git revision 'v9' in "),
    (["+data.version={rev: v1, remote: backup}"], r"^data\.version\.remote: no DVC remote 'backup' in .*`dvc remote list`"),
    (["+data.version={rev: v3}"], r"^data\.version: data/churn\.csv at v3 is tracked by DVC \(md5 [0-9a-f]{32}\) but "
                                   r"neither the local cache nor the remote has it: `dvc push` it from where it was added$"),
    (["+data.version={rev: v1}", "data.source.uri=data/other.csv"],
     r"^data/other\.csv: data\.source\.uri: data/other\.csv is tracked neither by DVC nor by git at revision v1$"),
])
def test_what_cannot_be_read_is_one_line(repo, overrides, message) -> None:
    with pytest.raises(DataError) as caught:
        data.load_table(recipe_at(repo["root"], *overrides), repo["root"])
    assert len(caught.value.problems) == 1
    assert __import__("re").search(message, str(caught.value.problems[0])), str(caught.value.problems[0])


def test_outside_a_git_repository_data_version_says_so(tmp_path) -> None:
    root = copy_project(tmp_path, ("recipes", "data"))
    with pytest.raises(DataError, match=r"data\.version reads the data at a git revision, but .* is not in a git repository"):
        data.load_table(recipe_at(root, "+data.version={rev: v1}"), root)


@pytest.mark.slow
def test_apply_at_a_revision_trains_on_its_rows_and_tags_its_version(repo, monkeypatch) -> None:
    from framework.runtime.tracking import client
    from tests.conftest import run_cli

    root = repo["root"]
    monkeypatch.chdir(root)
    for name, value in {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0", "MLFLOW_DISABLE_TELEMETRY": "true"}.items():
        monkeypatch.setenv(name, value)
    recipe_file = root / "recipes" / "churn.yaml"
    text = recipe_file.read_text()
    recipe_file.write_text(text.replace("  - rollout: canary\n", "  - rollout: direct\n")
                           + "data:\n  version:\n    rev: v2\n")  # what a user adds to pin the data
    try:
        result = run_cli("apply", "churn")
    finally:
        recipe_file.write_text(text)  # the module's other tests add data.version themselves
    assert result.exit_code == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert f"{repo['rows']['v2']} rows" in result.stdout + result.stderr  # the data step read v2, not the working copy
    tags = client(f"sqlite:///{root / '.mlops' / 'mlflow.db'}").get_model_version("churn", "1").tags
    assert tags["mlops.data.sha256"] == hashlib.sha256(repo["bytes"]["v2"]).hexdigest()
    assert tags["mlops.data.rev"] == run(root, "git", "rev-parse", "v2^{commit}")
    assert tags["mlops.data.dvc_md5"] == hashlib.md5(repo["bytes"]["v2"]).hexdigest()


def test_a_cluster_job_reads_the_file_its_submitter_pinned(repo, monkeypatch) -> None:
    """A job on a Ray cluster runs in Ray's upload of the project: no .git, and no file DVC
    tracks (DVC's .gitignore keeps it out). The submitter writes the file at the revision
    into the upload and hands the job its version; the job records the same tags."""
    from framework.runtime.submit import snapshot
    from framework.runtime.training.data_revision import PINNED_ENV
    from framework.runtime.training.data_version import pin_for_job

    root = repo["root"]
    recipe = recipe_at(root, "+data.version={rev: v2}")
    expected = data_version(recipe, root)
    with snapshot(root) as upload:
        assert not (upload / ".git" / "HEAD").exists() and not (upload / "data" / "churn.csv").exists()
        env = pin_for_job(recipe, root, upload)
        monkeypatch.setenv(PINNED_ENV, env[PINNED_ENV])
        assert len(data.load_table(recipe, upload)) == repo["rows"]["v2"]
        assert data_version(recipe, upload) == expected
        (upload / "data" / "churn.csv").write_text("customer_id\nC1\n")  # not the pinned bytes
        with pytest.raises(MlopsError, match=r"data\.version: .*churn\.csv is not the file the submitter pinned"):
            data_version(recipe, upload)
