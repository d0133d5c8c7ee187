"""Data a recipe cannot train on: `mlops check-data` and `mlops apply` exit 1 with one
exact `source: key: message` line per problem, no traceback, and nothing registered."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.tabular_project import tiers_frame, tiers_recipe, write_project

ONE_CLASS = ("data/tiers.csv: data.target: 'tier' has 1 distinct class ('gold') in 60 rows but model.num_classes "
             "is 3: no rows of 'bronze', 'silver'")


def _regression() -> dict:
    recipe = tiers_recipe(target="price", expectations={})
    recipe["model"] = {"task": "regression"}
    recipe["evaluation"] = {"metrics": ["rmse"]}
    return recipe


def _priced():
    frame = tiers_frame().drop(columns="tier").assign(price=[str(100 + i) for i in range(60)])
    frame.loc[[4, 9], "price"] = "ask"
    return frame


def _with_nulls():
    frame = tiers_frame().astype({"income": object})
    frame.loc[[0, 1, 2], "income"] = "n/a"
    return frame


CASES = {
    "one-class-of-three": (lambda: tiers_frame().assign(tier="gold"), None, [ONE_CLASS]),
    "regression-target-with-text": (_priced, _regression(), [
        "data/tiers.csv: data.target: 'price' is not numeric in 2 of 60 rows: 'ask' (2 rows); "
        "model.task regression predicts numbers"]),
    "feature-all-null": (lambda: tiers_frame().assign(income=None), None, [
        "data/tiers.csv: data.features: 'income' is null in all 60 rows (60 empty fields): there is nothing to learn "
        "from or impute with; fix the data or drop it from data.features"]),
    "missing-error-with-nulls": (_with_nulls, tiers_recipe(missing="error"), [
        "data/tiers.csv: data.missing: 'income' has 3 nulls in 60 rows (3 read from the text 'n/a') and data.missing "
        "is error: fill them in the data, or set data.missing: impute"]),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_check_data_refuses_with_one_line_each(case, tmp_path, monkeypatch):
    frame, recipe, lines = CASES[case]
    monkeypatch.chdir(write_project(tmp_path, frame(), recipe))
    result = run_cli("check-data", "tiers", "--report-dir", "report")
    assert result.exit_code == 1 and "Traceback" not in result.stdout + result.stderr
    assert [line for line in result.stderr.splitlines() if line.startswith("data/tiers.csv: ")] == lines
    report = json.loads(Path("report/data_report.json").read_text())
    assert report["passed"] is False and report["failed"] == len(lines)


def test_apply_refuses_one_class_of_three_before_training_and_registers_nothing(tmp_path, monkeypatch):
    root = write_project(tmp_path, tiers_frame().assign(tier="gold"))
    monkeypatch.chdir(root)
    result = run_cli("apply", "tiers")
    assert result.exit_code == 1 and "Traceback" not in result.stdout + result.stderr
    assert [line for line in result.stderr.splitlines() if line.startswith("data/tiers.csv: ")] == [ONE_CLASS]
    assert "training on Ray" not in result.stderr
    assert "model version" not in result.stdout
    # The data step comes before MLflow: no tracking store, so no run and no model version.
    assert not (root / ".mlops" / "mlflow.db").exists() and not (root / ".mlops" / "model_repository").exists()
    [report] = (root / ".mlops" / "runs" / "tiers" / "dev").glob("*/data_report.json")
    assert json.loads(report.read_text())["passed"] is False
