"""Issue 4, evaluate and export: features, model, metrics, ONNX/TorchScript export, gates.

One small model is trained once per module (a plain torch loop, CPU, seeded: ~1 s) on
the churn CSV, split here with a fixed permutation, and reused by the export and gate
tests. The CSV is read with pandas directly, independent of framework.runtime.data.
"""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import pytest
import torch

from framework import api
from framework.errors import MlopsError
from framework.runtime import export as export_mod
from framework.runtime.features import FeaturePipeline
from framework.runtime.gates import GateError, latency_p95_ms, raise_for_failures, run_gates
from framework.runtime.metrics_eval import evaluate, fairness_disparity
from framework.runtime.model import build_model, predict
from framework.signature import model_signature
from tests.conftest import REPO

try:  # cross-check against scikit-learn where the environment has it (not a project dependency)
    import sklearn.metrics as skm
except ImportError:  # pragma: no cover
    skm = None


def load(*overrides: str):
    return api.load_recipe("churn", project=REPO, overrides=list(overrides)).recipe


@pytest.fixture(scope="module")
def recipe():
    return load()


@pytest.fixture(scope="module")
def split():
    frame = pd.read_csv(REPO / "data" / "churn.csv")
    order = np.random.default_rng(7).permutation(len(frame))
    cut = len(frame) // 5
    return frame.iloc[order[cut:]].reset_index(drop=True), frame.iloc[order[:cut]].reset_index(drop=True)


@pytest.fixture(scope="module")
def pipeline(recipe, split):
    return FeaturePipeline.fit(recipe, split[0])


@pytest.fixture(scope="module")
def trained(recipe, split, pipeline):
    """A churn model after 4 epochs of AdamW on the training rows."""
    train, _ = split
    x, y = torch.from_numpy(pipeline.transform(train)), torch.from_numpy(pipeline.targets(train))
    model = build_model(recipe, pipeline)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    generator = torch.Generator().manual_seed(recipe.training.seed)
    model.train()
    for _ in range(4):
        for batch in torch.randperm(len(x), generator=generator).split(128):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model.logits(x[batch]), y[batch])
            loss.backward()
            optimizer.step()
    return model.eval()


@pytest.fixture(scope="module")
def onnx_file(trained, recipe, tmp_path_factory):
    return export_mod.export_onnx(trained, recipe, tmp_path_factory.mktemp("onnx") / "model.onnx")


# ----------------------------------------------------------------------------- features
def test_pipeline_layout_is_the_signature(recipe, pipeline, split):
    signature = model_signature(recipe)
    assert pipeline.width == signature.input.width == 13
    assert pipeline.columns == signature.columns
    matrix = pipeline.transform(split[1])
    assert matrix.dtype == np.float32 and matrix.shape == (len(split[1]), 13)
    # numeric columns carry raw values (standardisation lives in the model)
    assert np.allclose(matrix[:, 0], split[1]["tenure_months"].to_numpy())
    # every row has exactly one category per categorical feature (all churn values are known)
    assert (matrix[:, 6:9].sum(axis=1) == 1).all() and (matrix[:, 9:13].sum(axis=1) == 1).all()
    row = split[1].iloc[0]
    assert matrix[0, 6 + ["month_to_month", "one_year", "two_year"].index(row["contract"])] == 1.0


def test_nulls_are_imputed_with_the_training_median(recipe, split):
    train, validation = split
    train = train.copy()
    train.loc[:9, "total_charges"] = np.nan  # nulls in training don't move the median
    fitted = FeaturePipeline.fit(recipe, train)
    expected = float(np.nanmedian(train["total_charges"]))
    assert fitted.medians["total_charges"] == pytest.approx(expected)
    # the CSV itself has nulls in total_charges: none survives the transform
    assert not np.isnan(fitted.transform(train)).any()
    rows = validation.head(3).copy()
    rows["total_charges"] = pd.Series([np.nan, None, 12.5], dtype=object, index=rows.index)  # None and NaN
    column = fitted.columns.index("total_charges")
    # filled with the TRAINING median, not one of the rows being transformed
    assert fitted.transform(rows)[:, column].tolist() == pytest.approx([expected, expected, 12.5])


def test_unknown_or_missing_categories_are_all_zeros(pipeline, split):
    rows = split[1].head(3).copy()
    rows["contract"] = ["weekly", None, "two_year"]
    rows["payment_method"] = ["card", "crypto", "mailed_check"]
    matrix = pipeline.transform(rows)
    contract, payment = matrix[:, 6:9], matrix[:, 9:13]
    assert contract[0].tolist() == [0, 0, 0] and contract[1].tolist() == [0, 0, 0]
    assert contract[2].tolist() == [0, 0, 1]
    assert payment[0].tolist() == [1, 0, 0, 0] and payment[1].tolist() == [0, 0, 0, 0]


def test_pipeline_round_trips_through_json(pipeline, split):
    payload = json.loads(json.dumps(pipeline.to_dict()))  # JSON-safe: no numpy scalars
    again = FeaturePipeline.from_dict(payload)
    assert again.to_dict() == pipeline.to_dict()
    assert again.classes == [0, 1] and again.columns == pipeline.columns
    assert np.array_equal(again.transform(split[1]), pipeline.transform(split[1]))
    assert np.array_equal(again.targets(split[1]), pipeline.targets(split[1]))
    with pytest.raises(MlopsError):
        FeaturePipeline.from_dict({**payload, "format_version": 99})


def test_class_index_follows_the_target_in_set_order(split):
    flipped = load("data.expectations.columns.churned.in_set=[1,0]")
    fitted = FeaturePipeline.fit(flipped, split[0])
    assert fitted.classes == [1, 0]
    assert np.array_equal(fitted.targets(split[1]), 1 - split[1]["churned"].to_numpy())
    # without an in_set the sorted training labels are the classes
    unlisted = load("~data.expectations.columns.churned")
    assert FeaturePipeline.fit(unlisted, split[0]).classes == [0, 1]
    # numerically, not as text (2 before 10)
    tenfold = split[0].assign(churned=split[0]["churned"] * 8 + 2)
    assert FeaturePipeline.fit(unlisted, tenfold).classes == [2, 10]


def test_class_count_must_match_num_classes(split):
    with pytest.raises(MlopsError) as error:
        FeaturePipeline.fit(load("model.num_classes=3"), split[0])
    assert error.value.problems[0].key == "model.num_classes"


# ----------------------------------------------------------------------------- model
def test_trained_model_beats_the_majority_class(recipe, trained, pipeline, split):
    validation = split[1]
    probabilities = predict(trained, pipeline.transform(validation))
    assert probabilities.shape == (len(validation), 2)
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)  # softmax is in the model
    metrics = evaluate(recipe, probabilities, pipeline.targets(validation))
    majority = max(validation["churned"].mean(), 1 - validation["churned"].mean())
    assert metrics["accuracy"] > 0.7 and metrics["accuracy"] > majority + 0.05, metrics
    assert metrics["roc_auc"] > 0.75 and set(metrics) == {"accuracy", "f1", "roc_auc"}


def test_model_standardises_inside_and_initialises_from_the_seed(recipe, pipeline):
    first, second = build_model(recipe, pipeline), build_model(recipe, pipeline)
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items()):
        assert torch.equal(a, b), name
    mean, std = pipeline.standardisation()
    assert np.allclose(first.mean.numpy(), mean) and np.allclose(first.std.numpy(), std)
    assert first.std[6:].tolist() == [1.0] * 7 and first.mean[6:].tolist() == [0.0] * 7  # one-hot untouched
    assert [m.out_features for m in first.body if isinstance(m, torch.nn.Linear)] == [64, 32, 2]
    torch.manual_seed(1)
    expected = torch.rand(1)
    torch.manual_seed(1)
    build_model(recipe, pipeline)  # a forked RNG: the caller's stream is untouched
    assert torch.equal(torch.rand(1), expected)


def test_linear_architecture_has_no_hidden_layer(pipeline):
    model = build_model(load("model=linear"), pipeline)
    assert [m for m in model.body if isinstance(m, torch.nn.Linear)][0].in_features == 13
    assert len(model.body) == 1


# ----------------------------------------------------------------------------- export
def test_onnx_export_is_one_checked_file_with_the_signature(recipe, onnx_file):
    onnx.checker.check_model(str(onnx_file), full_check=True)
    graph = onnx.load(str(onnx_file))
    signature = model_signature(recipe)

    def dims(value):
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    assert [(i.name, dims(i)) for i in graph.graph.input] == [("features", ["batch", signature.input.width])]
    assert [(o.name, dims(o)) for o in graph.graph.output] == [("probabilities", ["batch", signature.output.width])]
    assert graph.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    # single file: no initializer points at external data, and nothing else was written
    assert all(t.data_location == onnx.TensorProto.DEFAULT for t in graph.graph.initializer)
    assert [p.name for p in onnx_file.parent.iterdir()] == ["model.onnx"]
    props = {p.key: p.value for p in graph.metadata_props}
    assert json.loads(props["mlops.columns"]) == list(signature.columns)


@pytest.mark.parametrize("batch", [1, 37])
def test_onnx_runtime_matches_torch(trained, onnx_file, pipeline, split, batch):
    sample = pipeline.transform(split[1].head(batch))
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"features": sample})
    with torch.no_grad():
        expected = trained(torch.from_numpy(sample)).numpy()
    assert got.shape == (batch, 2)
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    assert export_mod.parity(trained, onnx_file, sample) <= 1e-5


def test_regression_with_batch_norm_exports_a_prediction(split, tmp_path):
    regression = load(
        "model.task=regression", "evaluation.metrics=[mse,mae]", "+model.batch_norm=true",
        "~evaluation.gates.min_accuracy", "~evaluation.gates.min_roc_auc", "~evaluation.gates.fairness",
        "~data.expectations.table.min_class_fraction",
    )
    fitted = FeaturePipeline.fit(regression, split[0])
    assert fitted.classes is None and fitted.targets(split[1]).dtype == np.float32
    model = build_model(regression, fitted)
    model.train()
    model.logits(torch.from_numpy(fitted.transform(split[0].head(64))))  # move batch-norm running stats
    path = export_mod.export_onnx(model, regression, tmp_path / "model.onnx")
    output = onnx.load(str(path)).graph.output[0]
    assert output.name == "prediction" and output.type.tensor_type.shape.dim[1].dim_value == 1
    assert model.training  # export ran in eval mode and put the mode back
    assert export_mod.parity(model, path, fitted.transform(split[1].head(16))) <= 1e-5


def test_torchscript_export_matches_torch(trained, pipeline, split, tmp_path):
    path = export_mod.export_torchscript(trained, tmp_path / "model.pt")
    loaded = export_mod.load_torchscript(path)
    sample = torch.from_numpy(pipeline.transform(split[1].head(9)))  # another batch size than the trace's
    with torch.no_grad():
        torch.testing.assert_close(loaded(sample), trained(sample), atol=1e-6, rtol=0)
    assert trained.training is False  # export restored the mode it found


# ----------------------------------------------------------------------------- metrics
def fake_recipe(task: str, metrics: list[str], num_classes: int = 2):
    return SimpleNamespace(
        model=SimpleNamespace(task=task, num_classes=num_classes), evaluation=SimpleNamespace(metrics=metrics)
    )


BINARY_TARGETS = np.array([0, 1, 1, 0, 1, 0])
BINARY_P1 = np.array([0.2, 0.8, 0.4, 0.6, 0.9, 0.1])


def test_binary_metrics_by_hand():
    probabilities = np.column_stack([1 - BINARY_P1, BINARY_P1])
    names = ["accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"]
    got = evaluate(fake_recipe("classification", names), probabilities, BINARY_TARGETS)
    # predicted [0,1,0,1,1,0]: tp 2, fp 1, fn 1; AUC: 8 of 9 (positive, negative) pairs ordered
    expected = {
        "accuracy": 4 / 6,
        "precision": 2 / 3,
        "recall": 2 / 3,
        "f1": 2 / 3,
        "roc_auc": 8 / 9,
        "log_loss": -(math.log(0.8) + math.log(0.4) + math.log(0.9)) / 3,
    }
    assert got == pytest.approx(expected)
    # tied scores count half
    tied = evaluate(fake_recipe("classification", ["roc_auc"]), np.array([[0.5, 0.5], [0.5, 0.5]]), np.array([0, 1]))
    assert tied["roc_auc"] == 0.5
    if skm is not None:
        predicted = probabilities.argmax(axis=1)
        assert got["accuracy"] == pytest.approx(skm.accuracy_score(BINARY_TARGETS, predicted))
        assert got["f1"] == pytest.approx(skm.f1_score(BINARY_TARGETS, predicted))
        assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(BINARY_TARGETS, BINARY_P1))
        assert got["log_loss"] == pytest.approx(skm.log_loss(BINARY_TARGETS, probabilities))


def test_multiclass_metrics_are_macro_averaged():
    targets = np.array([0, 1, 2, 2, 1, 0])
    probabilities = np.array(
        [[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.2, 0.2, 0.6], [0.3, 0.4, 0.3], [0.2, 0.5, 0.3], [0.5, 0.1, 0.4]]
    )
    names = ["accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"]
    got = evaluate(fake_recipe("classification", names, 3), probabilities, targets)
    # predicted [0,2,2,1,1,0]: class 0 p=r=1; class 1 p=r=1/2; class 2 p=r=1/2
    assert got["accuracy"] == pytest.approx(4 / 6)
    assert got["precision"] == pytest.approx(2 / 3) and got["recall"] == pytest.approx(2 / 3)
    if skm is not None:
        predicted = probabilities.argmax(axis=1)
        assert got["f1"] == pytest.approx(skm.f1_score(targets, predicted, average="macro"))
        assert got["precision"] == pytest.approx(skm.precision_score(targets, predicted, average="macro"))
        assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(targets, probabilities, multi_class="ovr"))
        assert got["log_loss"] == pytest.approx(skm.log_loss(targets, probabilities))


def test_regression_metrics_by_hand():
    got = evaluate(fake_recipe("regression", ["mse", "rmse", "mae", "r2"]), np.array([[1.0], [2.0], [3.0]]), [1, 3, 5])
    # errors 0, 1, 2; total sum of squares around the mean 3 is 8
    assert got == pytest.approx({"mse": 5 / 3, "rmse": math.sqrt(5 / 3), "mae": 1.0, "r2": 1 - 5 / 8})


def test_a_metric_of_the_wrong_task_is_an_error():
    with pytest.raises(MlopsError) as error:
        evaluate(fake_recipe("regression", ["accuracy"]), np.zeros((2, 1)), np.zeros(2))
    assert error.value.problems[0].key == "evaluation.metrics"


def test_fairness_disparity_by_hand(recipe):
    groups = ["a", "a", "a", "b", "b", "b", None]
    predicted = np.array([1, 1, 0, 1, 0, 0, 1])
    targets = np.array([1, 1, 0, 1, 1, 0, 1])
    # demographic parity: positive rate a 2/3, b 1/3 (the null-group row is left out)
    disparity, per_group = fairness_disparity(recipe, predicted, targets, groups)
    assert disparity == pytest.approx(1 / 3) and per_group == pytest.approx({"a": 2 / 3, "b": 1 / 3})
    # equal opportunity: TPR a 2/2, b 1/2; probabilities are argmax-ed
    opportunity = load("evaluation.gates.fairness.metric=equal_opportunity")
    probabilities = np.eye(2)[predicted]
    disparity, per_group = fairness_disparity(opportunity, probabilities, targets, groups)
    assert disparity == pytest.approx(0.5) and per_group == pytest.approx({"a": 1.0, "b": 0.5})


# ----------------------------------------------------------------------------- gates
GOOD = {"accuracy": 0.8, "f1": 0.7, "roc_auc": 0.85}


def test_gates_pass(recipe, onnx_file):
    report = run_gates(recipe, GOOD, onnx_file, onnx_file.stat().st_size, 0.02, 1e-7, latency_runs=30)
    assert report.passed, report.to_dict()
    names = [r.name for r in report.results]
    assert names == [
        "min_accuracy", "min_roc_auc", "max_latency_p95_ms", "max_model_size_mb", "fairness.max_disparity",
        "onnx_parity_atol",
    ]
    latency = report.results[2]
    assert 0 < latency.observed <= 20
    raise_for_failures(report)  # no failure, no error
    assert json.loads(json.dumps(report.to_dict()))["passed"] is True


def test_failed_gates_name_their_recipe_keys(onnx_file):
    strict = load(
        "evaluation.gates.min_accuracy=0.99", "evaluation.gates.max_model_size_mb=0.001",
        "evaluation.gates.max_latency_p95_ms=0.000001",
    )
    report = run_gates(strict, GOOD, onnx_file, onnx_file.stat().st_size, 0.25, 1e-3, latency_runs=10)
    assert not report.passed
    by_name = {r.name: r for r in report.results}
    assert by_name["min_accuracy"].observed == 0.8 and by_name["min_accuracy"].threshold == 0.99
    assert by_name["min_roc_auc"].passed
    assert by_name["max_model_size_mb"].observed == pytest.approx(onnx_file.stat().st_size / 1e6)
    with pytest.raises(GateError) as error:
        raise_for_failures(report)
    keys = [p.key for p in error.value.problems]
    assert keys == [
        "evaluation.gates.min_accuracy", "evaluation.gates.max_latency_p95_ms",
        "evaluation.gates.max_model_size_mb", "evaluation.gates.fairness.max_disparity",
        "evaluation.gates.onnx_parity_atol",
    ]
    assert "observed 0.8, must be at least 0.99" in error.value.problems[0].message
    assert error.value.exit_code == 1

    from rich.console import Console

    console = Console(record=True, width=120)
    console.print(report.rich_table())
    text = console.export_text()
    assert "min_accuracy" in text and "FAIL" in text and "pass" in text


def test_unmeasured_gates_fail(recipe):
    report = run_gates(recipe, {"accuracy": float("nan")}, None, None, None, None)
    assert not any(r.passed for r in report.results)
    assert report.to_dict()["gates"][0]["observed"] is None  # NaN is not JSON


def test_latency_is_measured_on_onnx_runtime(onnx_file):
    p95 = latency_p95_ms(onnx_file, 13, runs=50)
    assert 0 < p95 < 1000
