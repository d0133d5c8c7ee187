"""What every recipe's data is checked for, whatever its expectations: a target that can
train the model (data_target.py) and each feature's nulls (data_nulls.py), in the report
and as one error line each. Data is a small `tiers` table (tests/tabular_project.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from framework import api
from framework.runtime.training import data as rd
from framework.runtime.training.data import DataError, DataReport
from framework.runtime.training.data_nulls import fill_summary
from tests.tabular_project import TIERS, tiers_frame, tiers_recipe, write_project


def check(tmp_path: Path, frame, recipe: dict | None = None) -> DataReport:
    root = write_project(tmp_path, frame, recipe)
    r = api.load_recipe((recipe or TIERS)["name"], project=root).recipe
    return rd.check_table(r, rd.load_table(r, root))


def failed(report: DataReport) -> dict[str, str]:
    return {r.key: r.message for r in report.failures}


def error_lines(report: DataReport) -> list[str]:
    with pytest.raises(DataError) as err:
        rd.raise_for_failures(report)
    assert err.value.exit_code == 1
    return str(err.value).splitlines()


def regression(**data_changes) -> dict:
    recipe = tiers_recipe(target="price", expectations={}, **data_changes)
    recipe["model"] = {"task": "regression"}
    recipe["evaluation"] = {"metrics": ["rmse"]}
    return recipe


# ---------------------------------------------------------------- the target


def test_a_target_with_every_class_passes(tmp_path):
    report = check(tmp_path, tiers_frame())
    assert report.passed
    [target] = [r for r in report.results if r.key == "data.target"]
    assert (target.expected, target.observed) == (
        "3 classes (model.num_classes)", "'tier' has 3 distinct classes ('bronze', 'gold', 'silver') in 60 rows")


def test_one_class_of_three_is_refused_naming_the_missing_ones(tmp_path):
    report = check(tmp_path, tiers_frame().assign(tier="gold"))
    assert error_lines(report) == [
        "data/tiers.csv: data.target: 'tier' has 1 distinct class ('gold') in 60 rows but model.num_classes is 3: "
        "no rows of 'bronze', 'silver'"]
    # min_class_fraction would pass here: the one class is 100% of the rows.


def test_without_in_set_fewer_or_more_classes_than_num_classes_are_refused(tmp_path):
    recipe = tiers_recipe(expectations={})
    assert failed(check(tmp_path / "a", tiers_frame().assign(tier="gold"), recipe)) == {
        "data.target": "'tier' has 1 distinct class ('gold') in 60 rows but model.num_classes is 3: "
                       "a classifier learns only the classes it has rows of"}
    four = tiers_frame().assign(tier=[("a", "b", "c", "d")[i % 4] for i in range(60)])
    assert failed(check(tmp_path / "b", four, recipe)) == {
        "data.target": "'tier' has 4 distinct classes ('a', 'b', 'c' and 1 more) in 60 rows but model.num_classes is 3"}


def test_classes_outside_in_set_are_the_in_set_line_and_do_not_count(tmp_path):
    frame = tiers_frame()
    frame.loc[frame["tier"] != "gold", "tier"] = "platinum"
    assert failed(check(tmp_path, frame)) == {
        "data.expectations.columns.tier.in_set": "expected one of 'bronze', 'silver', 'gold', "
                                                 "observed unexpected values: 'platinum' (40 rows)",
        "data.target": "'tier' has 1 distinct class ('gold') in 60 rows but model.num_classes is 3: "
                       "no rows of 'bronze', 'silver'",
    }


def test_a_regression_target_with_text_is_refused_with_examples(tmp_path):
    frame = tiers_frame().assign(price=[100.0 + i for i in range(60)]).astype({"price": object})
    frame.loc[[1, 2, 3], "price"] = "cheap"
    frame.loc[[7, 8], "price"] = "about 300"
    assert error_lines(check(tmp_path, frame.drop(columns="tier"), regression())) == [
        "data/tiers.csv: data.target: 'price' is not numeric in 5 of 60 rows: 'cheap' (3 rows), 'about 300' (2 rows); "
        "model.task regression predicts numbers"]


def test_a_numeric_regression_target_passes(tmp_path):
    frame = tiers_frame().assign(price=[100.0 + i for i in range(60)]).drop(columns="tier")
    report = check(tmp_path, frame, regression())
    assert report.passed
    assert [r.observed for r in report.results if r.key == "data.target"] == ["'price': 60 numbers from 100 to 159"]


@pytest.mark.parametrize("task", ["regression", "classification"])
def test_a_target_with_nulls_is_refused(tmp_path, task):
    frame = tiers_frame().assign(price=[100.0 + i for i in range(60)])
    frame.loc[[4, 9], "price"] = np.nan
    frame.loc[[4, 9, 11], "tier"] = None
    recipe, target = (regression(), "price") if task == "regression" else (TIERS, "tier")
    if task == "regression":
        frame = frame.drop(columns="tier")
    nulls = 2 if task == "regression" else 3
    assert error_lines(check(tmp_path, frame, recipe)) == [
        f"data/tiers.csv: data.target: '{target}' is null in {nulls} of 60 rows: drop those rows or fill the target "
        "(data.missing fills features only)"]


# ---------------------------------------------------------------- nulls


def test_a_feature_null_in_every_row_is_refused(tmp_path):
    csv = tiers_frame().assign(income="n/a").to_csv(index=False)
    assert error_lines(check(tmp_path, csv)) == [
        "data/tiers.csv: data.features: 'income' is null in all 60 rows (60 read from the text 'n/a'): there is "
        "nothing to learn from or impute with; fix the data or drop it from data.features"]


def test_missing_error_refuses_each_feature_with_nulls(tmp_path):
    frame = tiers_frame().astype({"income": object})
    frame.loc[[0, 1, 2], "income"] = "n/a"
    frame.loc[3, "income"] = ""
    frame.loc[[4, 5], "region"] = "NA"
    assert error_lines(check(tmp_path, frame.to_csv(index=False), tiers_recipe(missing="error"))) == [
        "data/tiers.csv: data.missing: 'income' has 4 nulls in 60 rows (3 read from the text 'n/a', 1 empty field) "
        "and data.missing is error: fill them in the data, or set data.missing: impute",
        "data/tiers.csv: data.missing: 'region' has 2 nulls in 60 rows (2 read from the text 'NA') "
        "and data.missing is error: fill them in the data, or set data.missing: impute",
    ]


def test_imputed_nulls_are_counted_with_their_spelling_in_every_report(tmp_path):
    frame = tiers_frame().astype({"income": object})
    frame.loc[:39, "income"] = "n/a"
    frame.loc[[50, 51], "income"] = "NULL"
    frame.loc[55, "region"] = ""
    report = check(tmp_path, frame.to_csv(index=False))
    assert report.passed  # impute: shown, not refused
    rows = {r.scope: (r.expected, r.observed) for r in report.results if r.key == "data.missing"}
    assert rows == {
        "income": ("nulls filled: median of the training split",
                   "income: 42 nulls (40 read from the text 'n/a', 2 from 'NULL')"),
        "region": ("nulls filled: no category (all-zero one-hot)", "region: 1 null (1 empty field)"),
    }
    json_path, html_path = report.write(tmp_path / "out")
    nulls = json.loads(json_path.read_text())["nulls"]
    assert nulls == [
        {"column": "income", "kind": "numeric", "nulls": 42, "read_from_text": {"n/a": 40, "NULL": 2},
         "filled_with": "median of the training split"},
        {"column": "region", "kind": "categorical", "nulls": 1, "read_from_text": {"": 1},
         "filled_with": "no category (all-zero one-hot)"},
    ]
    assert DataReport.from_dict(json.loads(json_path.read_text())) == report
    assert "income: 42 nulls (40 read from the text &#x27;n/a&#x27;, 2 from &#x27;NULL&#x27;)" in html_path.read_text()
    assert "| `data.missing` | nulls filled: median of the training split | income: 42 nulls" in report.to_markdown()
    console = Console(width=250, record=True, color_system=None)
    console.print(report.rich_table())
    assert "income: 42 nulls (40 read from the text 'n/a', 2 from 'NULL')" in console.export_text()


def test_parquet_nulls_are_real_nulls_without_a_spelling(tmp_path):
    frame = tiers_frame()
    frame.loc[[0, 1, 2], "income"] = np.nan
    recipe = tiers_recipe(source={"uri": "data/tiers.parquet", "format": "parquet"})
    report = check(tmp_path, frame, recipe)
    assert [r.observed for r in report.results if r.key == "data.missing"] == ["income: 3 nulls"]


def test_the_run_records_the_training_median_each_null_gets(tmp_path):
    root = write_project(tmp_path, tiers_frame().assign(income=[np.nan, np.nan] + [float(i) for i in range(58)]))
    recipe = api.load_recipe("tiers", project=root).recipe
    report = rd.check_table(recipe, rd.load_table(recipe, root))
    train = pd.DataFrame({"income": [1.0, np.nan, 3.0, 10.0], "region": ["north"] * 4})
    summary = fill_summary(recipe, report.nulls, train)
    assert summary["missing"] == "impute"
    assert summary["columns"]["income"] == {
        "column": "income", "kind": "numeric", "nulls": 2, "read_from_text": {"": 2},
        "filled_with": "median of the training split", "fill_value": 3.0}
    assert summary["columns"]["region"]["nulls"] == 0 and "fill_value" not in summary["columns"]["region"]
