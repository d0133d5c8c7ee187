"""Project settings from [tool.mlops] and recipes outside the default folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from framework import api
from framework.errors import ProjectError
from framework.project import Project
from tests.conftest import REPO, run_cli


def test_recipes_dir_comes_from_tool_mlops(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(REPO / "recipes", tmp_path / "ml" / "recipes")
    (tmp_path / "pyproject.toml").write_text('[tool.mlops]\nrecipes_dir = "ml/recipes"\n')
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")  # found by searching upwards
    project = Project.discover()
    assert project.recipes_dir == tmp_path / "ml" / "recipes"
    assert project.recipe_names() == ["churn", "churn_features", "support_assistant"]
    assert run_cli("validate", "churn").exit_code == 0


def test_unknown_setting_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.mlops]\nrecipe_dir = "r"\n')
    with pytest.raises(ProjectError, match=r"tool.mlops: unknown setting\(s\) recipe_dir; known: recipes_dir"):
        Project.discover(tmp_path)


def test_a_recipe_folder_anywhere_given_by_path(tmp_path: Path) -> None:
    shutil.copytree(REPO / "recipes", tmp_path / "elsewhere")
    path = tmp_path / "elsewhere" / "fraud.yaml"
    path.write_text((REPO / "recipes" / "churn.yaml").read_text().replace("name: churn", "name: fraud"))
    recipe = api.load_recipe(str(path), project=REPO).recipe
    assert recipe.name == "fraud"
    assert api.recipe_envs(str(path), project=REPO) == ["dev", "prod", "staging"]
