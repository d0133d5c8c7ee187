"""The data step of apply: loading, expectations, the report, the split.

Broken data is a modified copy of data/churn.csv written under tmp_path; the churn recipe
reads it because its `data.source.uri` is relative and `root` is tmp_path.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from rich.console import Console

from framework import api
from framework.errors import MlopsError
from framework.runtime.training import data as rd
from framework.runtime.training import splitting
from framework.runtime.training.data import DataError, DataReport
from tests.conftest import REPO

CSV = REPO / "data" / "churn.csv"


@pytest.fixture(scope="module")
def recipe():
    return api.load_recipe("churn", project=REPO).recipe


@pytest.fixture(scope="module")
def churn(recipe) -> pd.DataFrame:
    return rd.load_table(recipe, REPO)


def configured_keys(recipe) -> set[str]:
    """Every check the recipe configures, as the report keys it."""
    keys = set()
    for column, exp in recipe.data.expectations.columns.items():
        for check, value in exp.model_dump().items():
            if value is not None and value is not False:  # min: 0 is configured
                keys.add(f"data.expectations.columns.{column}.{check}")
    for check, value in recipe.data.expectations.table.model_dump().items():
        if value is not None:
            keys.add(f"data.expectations.table.{check}")
    return keys


def broken(tmp_path: Path, recipe, change) -> rd.DataReport:
    """Write churn.csv changed by `change(df) -> df` to tmp_path/data and check it from there."""
    df = pd.read_csv(CSV)
    (tmp_path / "data").mkdir(exist_ok=True)
    change(df).to_csv(tmp_path / "data" / "churn.csv", index=False)
    return rd.check_expectations(recipe, rd.load_table(recipe, tmp_path))


def failed(report: DataReport) -> dict[str, str]:
    return {r.key: r.observed for r in report.failures}


# ---------------------------------------------------------------- loading


def test_churn_passes_every_configured_expectation(recipe, churn):
    report = rd.check_expectations(recipe, churn)
    assert report.passed, [str(f) for f in report.failures]
    assert {r.key for r in report.results} == configured_keys(recipe)
    assert len(report.results) == len(configured_keys(recipe)) == 17  # one result per check, no extras
    assert report.rows == 5000
    # The recipe's columns, in recipe order: features, target, extra_columns.
    assert list(churn.columns) == recipe.data.columns()
    observed = {r.key: r.observed for r in report.results}
    assert observed["data.expectations.columns.total_charges.max_null_fraction"] == "16 nulls (0.32%)"
    assert observed["data.expectations.table.min_class_fraction"] == "smallest class 1: 35.98% (1799 rows)"


def test_the_report_adds_the_target_and_the_imputed_nulls(recipe, churn):
    # Beyond the 17 expectations: what the model needs of the data (tests/runtime/test_data_checks.py).
    report = rd.check_table(recipe, churn)
    assert report.passed and len(report.results) == 19
    assert {r.key: r.observed for r in report.results[17:]} == {
        "data.target": "'churned' has 2 distinct classes (0, 1) in 5000 rows",
        "data.missing": "total_charges: 16 nulls (16 empty fields)"}


def test_missing_column_names_the_file_and_suggests(tmp_path, recipe):
    df = pd.read_csv(CSV).rename(columns={"tenure_months": "tenure_month"}).drop(columns=["gender"])
    (tmp_path / "data").mkdir()
    df.to_csv(tmp_path / "data" / "churn.csv", index=False)
    with pytest.raises(DataError) as err:
        rd.load_table(recipe, tmp_path)
    lines = str(err.value).splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("data/churn.csv: data.features: column 'tenure_months' is not in data/churn.csv "
                               "(did you mean 'tenure_month'?)")
    assert lines[1].startswith("data/churn.csv: data.extra_columns: column 'gender' is not in data/churn.csv")
    assert isinstance(err.value, MlopsError) and err.value.exit_code == 1


def test_missing_file_names_the_file(tmp_path, recipe):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "chrun.csv").write_text("a\n1\n")
    with pytest.raises(DataError) as err:
        rd.load_table(recipe, tmp_path)
    [problem] = err.value.problems
    assert problem.key == "data.source.uri"
    assert str(problem.location) == "data/churn.csv"
    assert f"no such file: {tmp_path / 'data' / 'churn.csv'}" in problem.message
    assert "(did you mean 'chrun.csv'?)" in problem.message


def test_unreadable_file_is_a_data_error(tmp_path):
    recipe = api.load_recipe("churn", project=REPO, overrides=[
        f"data.source.uri={CSV}", "data.source.format=parquet"]).recipe
    with pytest.raises(DataError, match=r"churn\.csv: data\.source: cannot read as parquet: "):
        rd.load_table(recipe, tmp_path)


def test_parquet_loads_the_same_table(tmp_path, recipe, churn):
    path = tmp_path / "churn.parquet"
    pq.write_table(pa.Table.from_pandas(pd.read_csv(CSV), preserve_index=False), path)
    parquet = api.load_recipe("churn", project=REPO, overrides=[
        f"data.source.uri={path}", "data.source.format=parquet"]).recipe
    df = rd.load_table(parquet, Path("/nonexistent"))  # absolute uri: root is not used
    pd.testing.assert_frame_equal(df, churn)
    assert rd.check_expectations(parquet, df).passed


def test_file_uri(tmp_path, churn):
    recipe = api.load_recipe("churn", project=REPO, overrides=[f"data.source.uri=file://{CSV}"]).recipe
    pd.testing.assert_frame_equal(rd.load_table(recipe, tmp_path), churn)


def test_remote_uri_without_fsspec_says_what_to_install(monkeypatch):
    recipe = api.load_recipe("churn", project=REPO, overrides=["data.source.uri=s3://bucket/churn.csv"]).recipe
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "fsspec" else real(name, *a))
    with pytest.raises(DataError, match=r"s3://bucket/churn\.csv: data\.source\.uri: .*needs fsspec and s3fs: "
                                        r"pip install fsspec s3fs"):
        rd.load_table(recipe, REPO)


def test_remote_uri_without_its_filesystem_says_what_to_install(monkeypatch):
    # A stand-in fsspec whose s3 implementation is missing, whether or not fsspec is installed.
    def missing(protocol):
        raise ImportError(f"Install s3fs to access {protocol}")

    fake = types.ModuleType("fsspec")
    fake.get_filesystem_class = missing
    monkeypatch.setitem(sys.modules, "fsspec", fake)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name == "fsspec" else real(name, *a))
    recipe = api.load_recipe("churn", project=REPO, overrides=["data.source.uri=s3://bucket/churn.csv"]).recipe
    with pytest.raises(DataError, match=r"reading s3:// URIs needs s3fs: pip install s3fs"):
        rd.load_table(recipe, REPO)


# ---------------------------------------------------------------- broken data fails the right checks


def test_nulls_in_a_not_null_column(tmp_path, recipe):
    def change(df):
        df.loc[[5, 6, 7], "tenure_months"] = np.nan
        return df

    assert failed(broken(tmp_path, recipe, change)) == {
        "data.expectations.columns.tenure_months.not_null": "3 nulls (0.06%)"}


def test_value_above_max(tmp_path, recipe):
    def change(df):
        df.loc[10, "monthly_charges"] = 612.0
        return df

    report = broken(tmp_path, recipe, change)
    assert failed(report) == {"data.expectations.columns.monthly_charges.max": "max 612.0 > 500 (1 row)"}
    with pytest.raises(DataError) as err:
        rd.raise_for_failures(report)
    assert str(err.value) == ("data/churn.csv: data.expectations.columns.monthly_charges.max: "
                              "expected <= 500, observed max 612.0 > 500 (1 row)")


def test_value_below_min_and_not_numeric(tmp_path, recipe):
    def change(df):
        df.loc[3, "tenure_months"] = -4
        df["total_charges"] = df["total_charges"].astype(object)
        df.loc[4, "total_charges"] = "n/a?"
        return df

    assert failed(broken(tmp_path, recipe, change)) == {
        "data.expectations.columns.tenure_months.min": "min -4 < 0 (1 row)",
        "data.expectations.columns.total_charges.min": "not numeric: 'n/a?' (1 row)",
    }


def test_unknown_category_shows_up_to_three_examples(tmp_path, recipe):
    def change(df):
        df.loc[0:11, "contract"] = "weekly"
        df.loc[20:21, "payment_method"] = "cash"
        df.loc[22:24, "payment_method"] = "cheque"
        df.loc[25, "payment_method"] = "barter"
        df.loc[26, "payment_method"] = "IOU"
        return df

    assert failed(broken(tmp_path, recipe, change)) == {
        "data.expectations.columns.contract.in_set": "unexpected values: 'weekly' (12 rows)",
        "data.expectations.columns.payment_method.in_set":
            "unexpected values: 'cheque' (3 rows), 'cash' (2 rows), 'IOU' (1 row) and 1 more",
    }


def test_in_set_compares_numbers_and_text_sensibly(recipe):
    exp = recipe.data.expectations.columns["churned"]  # in_set [0, 1]
    ints = pd.Series([0, 1, 1])
    floats_with_gap = pd.Series([0.0, 1.0, np.nan])  # what pandas makes of an int column with a gap
    text = pd.Series(["0", "1", "2"])
    assert rd._column_results("churned", ints, exp, 3)[-1].passed
    assert rd._column_results("churned", floats_with_gap, exp, 3)[-1].passed
    [_, in_set] = rd._column_results("churned", text, exp, 3)
    assert (in_set.passed, in_set.observed) == (False, "unexpected values: '2' (1 row)")


def test_duplicated_id(tmp_path, recipe):
    def change(df):
        df.loc[1, "customer_id"] = df.loc[0, "customer_id"]
        return df

    assert failed(broken(tmp_path, recipe, change)) == {
        "data.expectations.columns.customer_id.unique": "1 repeated value: 'C00000' (2 rows)"}


def test_too_few_rows(tmp_path, recipe):
    report = broken(tmp_path, recipe, lambda df: df.head(500))
    assert failed(report) == {"data.expectations.table.min_rows": "500 rows"}


def test_too_many_duplicate_rows(tmp_path, recipe):
    # 100 exact copies: 100 / 5100 = 1.96% > 1%; the copied ids repeat too.
    report = broken(tmp_path, recipe, lambda df: pd.concat([df, df.head(100)], ignore_index=True))
    observed = failed(report)
    assert observed["data.expectations.table.max_duplicate_fraction"] == "100 duplicate rows (1.96%)"
    assert set(observed) == {"data.expectations.table.max_duplicate_fraction",
                             "data.expectations.columns.customer_id.unique"}
    assert observed["data.expectations.columns.customer_id.unique"].startswith(
        "100 repeated values: 'C00000' (2 rows), 'C00001' (2 rows), 'C00002' (2 rows) and 97 more")


def test_rare_class(tmp_path, recipe):
    def change(df):
        churners = df.index[df["churned"] == 1]
        return df.drop(churners[200:])  # 200 of 3401 rows = 5.88%

    assert failed(broken(tmp_path, recipe, change)) == {
        "data.expectations.table.min_class_fraction": "rare classes: 1 5.88% (200 rows)"}


def test_every_failure_is_its_own_problem(tmp_path, recipe):
    def change(df):
        df.loc[[5, 6, 7], "tenure_months"] = np.nan
        df.loc[10, "monthly_charges"] = 612.0
        return df.head(900)

    report = broken(tmp_path, recipe, change)
    with pytest.raises(DataError) as err:
        rd.raise_for_failures(report, "somewhere.csv")
    assert [(str(p.location), p.key) for p in err.value.problems] == [
        ("somewhere.csv", "data.expectations.columns.tenure_months.not_null"),
        ("somewhere.csv", "data.expectations.columns.monthly_charges.max"),
        ("somewhere.csv", "data.expectations.table.min_rows"),
    ]
    rd.raise_for_failures(rd.check_expectations(recipe, pd.read_csv(CSV)))  # passing data: no error


def test_a_column_missing_from_the_frame_fails_its_checks(recipe, churn):
    # load_table refuses such a frame; a frame built by hand still gets an honest report.
    report = rd.check_expectations(recipe, churn.drop(columns=["customer_id"]))
    assert failed(report) == {"data.expectations.columns.customer_id.not_null": "column missing",
                              "data.expectations.columns.customer_id.unique": "column missing"}


def test_load_and_check_writes_the_report_then_stops(tmp_path, recipe):
    (tmp_path / "data").mkdir()
    pd.read_csv(CSV).head(10).to_csv(tmp_path / "data" / "churn.csv", index=False)
    with pytest.raises(DataError, match="min_rows: expected >= 1000 rows, observed 10 rows"):
        rd.load_and_check(recipe, tmp_path, tmp_path / "out")
    assert json.loads((tmp_path / "out" / "data_report.json").read_text())["passed"] is False


# ---------------------------------------------------------------- report artifacts


def test_json_report_round_trips_and_is_deterministic(tmp_path, recipe, churn):
    report = rd.check_expectations(recipe, churn)
    json_path, html_path = report.write(tmp_path / "a")
    assert (json_path.name, html_path.name) == ("data_report.json", "data_report.html")
    loaded = json.loads(json_path.read_text())
    assert loaded == report.to_dict()
    assert DataReport.from_dict(loaded) == report
    assert loaded["passed"] is True and loaded["checks"] == 17 and loaded["failed"] == 0
    assert set(loaded["results"][0]) == {"key", "scope", "check", "expected", "observed", "passed"}
    again, _ = rd.check_expectations(recipe, rd.load_table(recipe, REPO)).write(tmp_path / "b")
    assert again.read_bytes() == json_path.read_bytes()


def test_html_escapes_values_and_colors_results(tmp_path, recipe):
    def change(df):
        df.loc[0, "contract"] = "<script>alert('x')</script>"
        return df

    report = broken(tmp_path, recipe, change)
    _, html_path = report.write(tmp_path / "out")
    page = html_path.read_text()
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert page.count('<tr class="fail">') == 1 and page.count('<tr class="pass">') == 16
    assert "FAILED (1 of 17 checks)" in page


def test_rich_table_prints_values_literally(tmp_path, recipe):
    def change(df):
        df.loc[0, "contract"] = "[bold]weekly[/bold]"
        return df

    table = broken(tmp_path, recipe, change).rich_table()
    console = Console(width=250, record=True, color_system=None)
    console.print(table)
    text = console.export_text()
    assert "'[bold]weekly[/bold]' (1 row)" in text  # not swallowed as markup
    assert "data.expectations.columns.contract.in_set" in text and "FAIL" in text
    assert "1 of 17 checks failed" in text


# ---------------------------------------------------------------- split


def test_split_is_deterministic_stratified_and_sized(recipe, churn):
    train, val = splitting.split(recipe, churn)
    train2, val2 = splitting.split(recipe, churn)
    assert train.index.equals(train2.index) and val.index.equals(val2.index)
    assert len(val) == 1000 and len(train) == 4000  # 0.2 of 5000
    assert set(train.index).isdisjoint(val.index) and len(set(train.index) | set(val.index)) == 5000
    overall = churn["churned"].value_counts(normalize=True)
    for part in (train, val):
        shares = part["churned"].value_counts(normalize=True)
        assert (shares - overall).abs().max() < 0.02
    assert val["churned"].sum() == round(0.2 * 1799)  # exactly stratified, not a lucky shuffle

    other = api.load_recipe("churn", project=REPO, overrides=["data.split.seed=7"]).recipe
    assert not splitting.split(other, churn)[1].index.equals(val.index)  # the seed decides the rows


def test_split_fraction_and_unstratified(churn):
    recipe = api.load_recipe("churn", project=REPO, overrides=[
        "data.split.validation=0.3", "data.split.stratify=false"]).recipe
    train, val = splitting.split(recipe, churn)
    assert (len(train), len(val)) == (3500, 1500)
    assert splitting.split(recipe, churn)[1].index.equals(val.index)


def test_split_small_data_keeps_both_parts_and_every_class(recipe):
    df = pd.DataFrame({"churned": [0, 0, 0, 1, 1]})
    train, val = splitting.split(recipe, df)
    assert len(train) and len(val)
    assert set(train["churned"]) == set(val["churned"]) == {0, 1}


def test_split_class_too_small_to_stratify(recipe, churn):
    df = pd.concat([churn, churn.head(1).assign(churned=2)], ignore_index=True)
    with pytest.raises(DataError, match=r"data\.split\.stratify: class 2 \(1 row\) is too small to stratify"):
        splitting.split(recipe, df)
