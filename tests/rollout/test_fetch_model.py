"""`python -m framework.runtime.serving.fetch_model`, the Triton pod's init container: fills a
model repository from the registry with the version the aliases say."""

from __future__ import annotations

import subprocess
import sys

import pytest

from framework.contracts.triton import model_config
from framework.runtime.serving.fetch_model import choose_version, main
from framework.runtime.serving.repository import load_repository
from tests.conftest import REPO
from tests.rollout.conftest import register, set_aliases

RESOLVED = REPO / "generated" / "churn" / "dev" / "recipe.resolved.yaml"
CONFIG = REPO / "generated" / "churn" / "dev" / "triton" / "churn" / "config.pbtxt"


@pytest.fixture(scope="module")
def registry(tmp_path_factory, churn_recipe, model_files):
    state = tmp_path_factory.mktemp("fetch") / ".mlops"
    uri, versions = register(churn_recipe, state, [model_files["1"], model_files["2"]])
    assert versions == ["1", "2"]
    return state, uri


def fetch(state, dest, *extra: str) -> int:
    return main([str(RESOLVED), str(dest), "--state-dir", str(state), *extra])


@pytest.mark.parametrize(
    "aliases, wanted, chosen",
    [
        ({"champion": "1", "candidate": "2", "rejected": None}, "auto", ("candidate", "2")),
        ({"champion": "1", "candidate": "2", "rejected": "2"}, "auto", ("champion", "1")),
        ({"champion": "1", "candidate": None, "rejected": None}, "auto", ("champion", "1")),
        ({"champion": None, "candidate": "2", "rejected": "2"}, "auto", None),
        ({"champion": "1", "candidate": "2", "rejected": None}, "champion", ("champion", "1")),
        ({"champion": None, "candidate": "2", "rejected": None}, "champion, candidate", ("candidate", "2")),
    ],
)
def test_which_version_a_pod_serves(aliases, wanted, chosen):
    assert choose_version(aliases, wanted) == chosen


def test_fills_tritons_layout_with_the_candidate(registry, churn_recipe, model_files, tmp_path, capsys):
    state, uri = registry
    set_aliases(churn_recipe, uri, champion="1", candidate="2")
    assert fetch(state, tmp_path / "models") == 0
    assert "churn version 2 (candidate)" in capsys.readouterr().out
    model_dir = tmp_path / "models" / "churn"
    assert sorted(p.name for p in model_dir.iterdir()) == ["2", "config.pbtxt"]
    assert (model_dir / "config.pbtxt").read_text() == CONFIG.read_text()  # what generate renders
    assert (model_dir / "2" / "model.onnx").read_bytes() == model_files["2"].read_bytes()
    repository = load_repository(tmp_path / "models", {"churn": model_config(churn_recipe)})  # the serving app loads it as is
    assert repository.versions() == {"churn": ["2"]}


def test_after_a_rollback_new_pods_serve_the_champion(registry, churn_recipe, model_files, tmp_path):
    from framework.runtime.rollout.state import reject_version

    state, uri = registry
    set_aliases(churn_recipe, uri, champion="1", candidate="2")
    reject_version(churn_recipe.registered_model, "2", uri=uri)
    assert fetch(state, tmp_path / "models") == 0
    assert (tmp_path / "models" / "churn" / "1" / "model.onnx").read_bytes() == model_files["1"].read_bytes()
    assert not (tmp_path / "models" / "churn" / "2").exists()


def test_alias_by_hand_and_a_second_fetch_keeps_the_files(registry, churn_recipe, tmp_path):
    state, uri = registry
    set_aliases(churn_recipe, uri, champion="1", candidate="2")
    assert fetch(state, tmp_path / "models", "--alias", "champion") == 0
    model = tmp_path / "models" / "churn" / "1" / "model.onnx"
    before = model.stat().st_mtime_ns
    assert fetch(state, tmp_path / "models", "--alias", "champion") == 0
    assert model.stat().st_mtime_ns == before
    assert not list((tmp_path / "models").rglob(".*partial"))


def test_no_registered_version_is_one_line_and_exit_1(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "framework.runtime.serving.fetch_model", str(RESOLVED), str(tmp_path / "models"),
         "--state-dir", str(tmp_path / "empty")],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )
    assert result.returncode == 1
    store = f"sqlite:///{(tmp_path / 'empty').resolve()}/mlflow.db"
    assert result.stderr == (
        f"fetch_model: registry: no version of 'churn' has alias candidate or champion in {store}: "
        "train and register one first (mlops apply churn)\n"
    )
    assert not (tmp_path / "models").exists() and not (tmp_path / "empty").exists()
