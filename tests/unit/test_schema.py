"""The JSON Schemas: committed copy matches the models; examples validate against them."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from framework import api
from framework.api.recipes import schema_files
from tests.conftest import REPO, run_cli

SCHEMAS = REPO / "schemas"
RECIPE_FILES = sorted((REPO / "recipes").rglob("*.yaml"))


def _validator(name: str) -> jsonschema.protocols.Validator:
    schema = json.loads((SCHEMAS / name).read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def test_committed_schemas_match_a_fresh_export() -> None:
    expected = schema_files()
    committed = {str(p.relative_to(SCHEMAS)): p.read_text() for p in SCHEMAS.rglob("*.schema.json")}
    assert committed == expected, "run `mlops schema` and commit schemas/"


@pytest.mark.parametrize(("recipe", "env"), [(r, e) for r in ("churn", "support_assistant") for e in ("dev", "staging", "prod")])
def test_composed_examples_validate_against_the_schema(recipe: str, env: str) -> None:
    resolved = api.show(recipe, env=env, project=REPO).resolved
    _validator("recipe.schema.json").validate(resolved)


def test_the_schema_rejects_what_the_models_reject() -> None:
    resolved = api.show("churn", project=REPO).resolved
    resolved["training"]["epochz"] = 3
    assert not _validator("recipe.schema.json").is_valid(resolved)


@pytest.mark.parametrize("path", RECIPE_FILES, ids=[str(p.relative_to(REPO)) for p in RECIPE_FILES])
def test_every_recipe_file_names_its_schema_and_validates_against_it(path: Path) -> None:
    header = [line for line in path.read_text().splitlines()[:2] if line.startswith("#")]
    modeline = next(line for line in header if line.startswith("# yaml-language-server: $schema="))
    if not path.read_text().startswith("# @package"):  # Hydra reads @package only from the first line
        assert path.read_text().startswith("# yaml-language-server:")
    target = (path.parent / modeline.split("=", 1)[1]).resolve()
    assert target.is_file(), target
    data = yaml.safe_load(path.read_text()) or {}
    _validator(str(target.relative_to(SCHEMAS))).validate(data)


def test_every_field_has_a_description() -> None:
    schema = json.loads((SCHEMAS / "recipe.schema.json").read_text())
    missing = [
        f"{name}.{field}"
        for name, model in [("Recipe", schema), *schema["$defs"].items()]
        for field, prop in model.get("properties", {}).items()
        if not prop.get("description")
    ]
    assert missing == []


def test_schema_check_exits_2_on_drift_and_0_when_current(project: Path) -> None:
    assert run_cli("schema", "--check").exit_code == 0
    target = project / "schemas" / "recipe.schema.json"
    target.write_text(target.read_text().replace("Customer", "Client") + " ")
    result = run_cli("schema", "--check")
    assert result.exit_code == 2
    assert "schemas/recipe.schema.json: differs from the models" in result.stderr
    assert run_cli("schema").exit_code == 0
    assert run_cli("schema", "--check").exit_code == 0
