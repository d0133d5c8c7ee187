"""The tensor contract shared by the exporter, Triton's config and the serving app."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from framework import api
from framework.errors import RecipeError
from framework.signature import model_signature
from tests.conftest import REPO

REGRESSION = [
    "model.task=regression",
    "~data.expectations.table.min_class_fraction",
    "evaluation.metrics=[rmse]",
    "~evaluation.gates.min_accuracy",
    "~evaluation.gates.min_roc_auc",
]

CHURN_LAYOUT = [
    ("tenure_months", None),
    ("monthly_charges", None),
    ("total_charges", None),
    ("support_calls", None),
    ("num_products", None),
    ("senior_citizen", None),
    ("contract", "month_to_month"),
    ("contract", "one_year"),
    ("contract", "two_year"),
    ("payment_method", "card"),
    ("payment_method", "bank_transfer"),
    ("payment_method", "electronic_check"),
    ("payment_method", "mailed_check"),
]


def load(*overrides: str, recipe: str = "churn"):
    return api.load_recipe(recipe, overrides=list(overrides), project=REPO).recipe


def test_churn_layout_numeric_first_then_one_hot_in_in_set_order():
    signature = model_signature(load())
    assert list(signature.layout) == CHURN_LAYOUT
    assert signature.columns[5:8] == ("senior_citizen", "contract=month_to_month", "contract=one_year")
    assert (signature.input.name, signature.input.dtype, signature.input.width) == ("features", "FP32", 13)
    assert signature.input.shape == (-1, 13)
    assert (signature.output.name, signature.output.dtype, signature.output.width) == ("probabilities", "FP32", 2)
    assert signature.task == "classification"


def test_churn_width_matches_the_data_file():
    """Counted straight from the YAML, independently of the recipe models."""
    data = yaml.safe_load((REPO / "recipes" / "data" / "churn_csv.yaml").read_text())
    numeric = [f for f in data["features"] if f not in data["categorical"]]
    categories = sum(len(data["expectations"]["columns"][c]["in_set"]) for c in data["categorical"])
    assert (len(numeric), categories) == (6, 7)
    assert model_signature(load()).input.width == len(numeric) + categories == 13


def test_order_of_data_categorical_does_not_change_the_layout():
    swapped = load("data.categorical=[payment_method,contract]")
    assert swapped.data.categorical == ["payment_method", "contract"]
    assert list(model_signature(swapped).layout) == CHURN_LAYOUT


def test_torchscript_uses_triton_libtorch_names():
    signature = model_signature(load("serving.format=torchscript"))
    assert (signature.input.name, signature.output.name) == ("INPUT__0", "OUTPUT__0")
    assert (signature.input.width, signature.output.width) == (13, 2)


def test_output_width_is_num_classes():
    assert model_signature(load("model.num_classes=5")).output.width == 5


@pytest.mark.parametrize(("fmt", "name"), [("onnx", "prediction"), ("torchscript", "OUTPUT__0")])
def test_regression_outputs_one_prediction(fmt: str, name: str):
    signature = model_signature(load(*REGRESSION, f"serving.format={fmt}"))
    assert signature.task == "regression"
    assert (signature.output.name, signature.output.width, signature.output.dtype) == (name, 1, "FP32")
    assert signature.input.width == 13


def with_categories(recipe, **in_sets):
    """A copy of a validated recipe with other in_set values (None drops the column's
    expectation), skipping validation: the recipe checks refuse such recipes, and the
    signature must still fail clearly on one built in code."""
    columns = dict(recipe.data.expectations.columns)
    for column, in_set in in_sets.items():
        if in_set is None:
            columns.pop(column)
        else:
            columns[column] = columns[column].model_copy(update={"in_set": in_set})
    expectations = recipe.data.expectations.model_copy(update={"columns": columns})
    return recipe.model_copy(update={"data": recipe.data.model_copy(update={"expectations": expectations})})


def test_recipe_checks_refuse_a_categorical_without_in_set():
    with pytest.raises(RecipeError, match=r"data\.expectations\.columns\.contract\.in_set"):
        load("~data.expectations.columns.contract")


def test_categorical_without_in_set_is_a_clear_error():
    recipe = with_categories(load(), contract=None)
    with pytest.raises(
        RecipeError,
        match=r"^data\.expectations\.columns\.contract\.in_set: data\.categorical 'contract' needs "
        r"data\.expectations\.columns\.contract\.in_set \(its categories\)",
    ):
        model_signature(recipe)


def test_every_categorical_without_in_set_is_reported():
    recipe = with_categories(load(), contract=None, payment_method=[])
    with pytest.raises(RecipeError) as caught:
        model_signature(recipe)
    assert [p.key for p in caught.value.problems] == [
        "data.expectations.columns.contract.in_set",
        "data.expectations.columns.payment_method.in_set",
    ]


def test_repeated_category_is_an_error():
    recipe = with_categories(load(), contract=["a", "b", "a"])
    with pytest.raises(RecipeError, match=r"contract\.in_set lists 'a' more than once"):
        model_signature(recipe)


def test_llm_recipe_has_no_tensor_signature():
    with pytest.raises(RecipeError, match=r"^model\.kind: a tensor signature needs a tabular model.*llm"):
        model_signature(load(recipe="support_assistant"))


def test_import_light():
    code = (
        "import sys, framework.signature; "
        "heavy = {'torch', 'numpy', 'pandas', 'onnx', 'ray', 'jinja2'} & set(sys.modules); "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)
