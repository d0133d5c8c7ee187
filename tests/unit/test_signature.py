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

CHURN_COLUMNS = [
    "tenure_months", "monthly_charges", "total_charges", "support_calls", "num_products", "senior_citizen",
    "contract", "payment_method",
]


def load(*overrides: str, recipe: str = "churn"):
    return api.load_recipe(recipe, overrides=list(overrides), project=REPO).recipe


def described(tensors):
    return [(t.name, t.dtype, t.width) for t in tensors]


def test_churn_takes_one_raw_column_per_feature_in_data_features_order():
    signature = model_signature(load())
    assert signature.columns == tuple(CHURN_COLUMNS)
    assert described(signature.inputs) == [
        *[(c, "FP32", 1) for c in CHURN_COLUMNS[:6]], ("contract", "BYTES", 1), ("payment_method", "BYTES", 1),
    ]
    assert all(t.shape == (-1, 1) for t in signature.inputs)
    assert described(signature.outputs) == [("probabilities", "FP32", 2), ("label", "BYTES", 1)]
    assert signature.scores.name == "probabilities" and signature.output("label").dtype == "BYTES"
    assert signature.task == "classification"


def test_inputs_follow_data_features_not_data_categorical():
    swapped = load("data.categorical=[payment_method,contract]")
    assert model_signature(swapped).columns == tuple(CHURN_COLUMNS)
    reordered = load("data.features=[contract,tenure_months,monthly_charges,total_charges,support_calls,"
                     "num_products,senior_citizen,payment_method]")
    assert model_signature(reordered).columns[:2] == ("contract", "tenure_months")


def test_torchscript_outputs_follow_libtorchs_name__index_convention():
    signature = model_signature(load("serving.format=torchscript"))
    assert signature.columns == tuple(CHURN_COLUMNS)  # forward()'s arguments
    assert [t.name for t in signature.outputs] == ["probabilities__0", "label__1"]


def test_output_width_is_num_classes():
    assert model_signature(load("model.num_classes=5")).scores.width == 5


@pytest.mark.parametrize(("fmt", "name"), [("onnx", "prediction"), ("torchscript", "prediction__0")])
def test_regression_outputs_one_prediction(fmt: str, name: str):
    signature = model_signature(load(*REGRESSION, f"serving.format={fmt}"))
    assert signature.task == "regression"
    assert described(signature.outputs) == [(name, "FP32", 1)]
    assert len(signature.inputs) == 8


def test_categorical_without_in_set_is_accepted_its_categories_come_from_training():
    recipe = load("~data.expectations.columns.contract")
    assert model_signature(recipe).columns == tuple(CHURN_COLUMNS)


def test_a_feature_named_like_an_output_is_refused():
    with pytest.raises(RecipeError, match=r"data\.features 'label' has the name of the model's output 'label'"):
        load("data.features=[tenure_months,label]", "data.categorical=[]",
             "data.expectations.columns={}")


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
