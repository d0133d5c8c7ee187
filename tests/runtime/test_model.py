"""Issue 4, evaluate and export: features, model, metrics, ONNX/TorchScript export, gates;
issue 13, the raw-column contract (framework/signature.py) and regression that learns.

One small model is trained once per module (a plain torch loop, CPU, seeded: ~1 s) on
the churn CSV, split here with a fixed permutation, and reused by the export and gate
tests. The CSV is read with pandas directly, independent of framework.runtime.training.data.
A regression model is trained once per module too (EpochRunner, the recipe's default
training settings) on a synthetic housing table: a target of mean ~600 and sd ~300,
numeric features with nulls and a categorical one without in_set.

The exported model takes the raw columns (one [batch, 1] input per feature: FP32, or
STRING for a category), imputes and one-hot encodes inside the graph, and returns
`probabilities` and `label` (the class names), or `prediction` in the target's units.
"""

from __future__ import annotations

import itertools
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
from framework.runtime.training import export as export_mod
from framework.runtime.training.features import FeaturePipeline
from framework.runtime.training.gates import GateError, latency_p95_ms, raise_for_failures, run_gates
from framework.runtime.training.metrics_eval import evaluate, fairness_disparity
from framework.runtime.training.epochs import EpochRunner
from framework.runtime.training.model import build_model, predict
from framework.runtime.training.onnx_columns import NET_PREFIX
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
def onnx_file(trained, recipe, pipeline, tmp_path_factory):
    return export_mod.export_onnx(trained, recipe, pipeline, tmp_path_factory.mktemp("onnx") / "model.onnx")


def messy(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows with what a client sends that training never saw: nulls (NaN and None) in a
    number and in a category, categories outside the training ones."""
    rows = frame.head(6).copy().reset_index(drop=True)
    rows["total_charges"] = pd.Series([np.nan, None, 12.5, np.nan, 80.0, 3000.0], dtype=object)
    rows["contract"] = ["weekly", None, "two_year", "", "one_year", "month_to_month"]
    rows["payment_method"] = ["card", "crypto", None, "mailed_check", "CARD", "bank_transfer"]
    return rows


def ort_run(path, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feed)))


# ----------------------------------------------------------------------------- features
def test_pipeline_layout_is_the_signature(recipe, pipeline, split):
    signature = model_signature(recipe)
    # the model's inputs are the raw columns; the encoded matrix is the network's, inside the graph
    assert pipeline.features == signature.columns == tuple(recipe.data.features)
    assert [(t.name, t.dtype, t.shape) for t in signature.inputs] == [
        (name, "BYTES" if name in recipe.data.categorical else "FP32", (-1, 1)) for name in recipe.data.features
    ]
    assert [(t.name, t.dtype, t.shape) for t in signature.outputs] == [("probabilities", "FP32", (-1, 2)), ("label", "BYTES", (-1, 1))]
    assert signature.scores is signature.output("probabilities") and signature.output("label").dtype == "BYTES"
    raw = pipeline.raw_inputs(split[1])
    assert list(raw) == list(signature.columns)
    for tensor in signature.inputs:  # request tensors: [rows, 1], float32 or text
        assert raw[tensor.name].shape == (len(split[1]), 1)
        assert raw[tensor.name].dtype == (np.dtype(object) if tensor.dtype == "BYTES" else np.float32)
    assert raw["contract"][:, 0].tolist() == split[1]["contract"].tolist()
    assert pipeline.width == len(pipeline.columns) == 13
    assert pipeline.columns[:6] == signature.columns[:6] and pipeline.columns[6] == "contract=month_to_month"
    assert pipeline.class_names == ["0", "1"]
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
    assert again.features == pipeline.features and again.class_names == ["0", "1"]
    assert (again.target_mean, again.target_std) == (0.0, 1.0)  # a classifier's target is not scaled
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


def test_categories_without_in_set_are_learned_from_the_training_split(split):
    unlisted = load("~data.expectations.columns.contract", "~data.expectations.columns.payment_method")
    train = split[0].copy()
    train.loc[:4, "contract"] = None  # nulls are no category
    fitted = FeaturePipeline.fit(unlisted, train)
    assert fitted.categorical == {
        "contract": ["month_to_month", "one_year", "two_year"],  # sorted, deterministic
        "payment_method": ["bank_transfer", "card", "electronic_check", "mailed_check"],
    }
    assert fitted.width == 13
    only_two = train[train["contract"] != "two_year"]
    assert FeaturePipeline.fit(unlisted, only_two).categorical["contract"] == ["month_to_month", "one_year"]


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
ONNX_TYPES = {"FP32": onnx.TensorProto.FLOAT, "BYTES": onnx.TensorProto.STRING}


def _dims(value):
    return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]


def _described(values):
    return [(v.name, v.type.tensor_type.elem_type, _dims(v)) for v in values]


def test_onnx_export_is_one_checked_file_with_the_signature(recipe, pipeline, onnx_file):
    onnx.checker.check_model(str(onnx_file), full_check=True)
    graph = onnx.load(str(onnx_file))
    signature = model_signature(recipe)
    # one input per raw column, named after it, [batch, 1]: FLOAT numbers, STRING categories
    assert _described(graph.graph.input) == [(t.name, ONNX_TYPES[t.dtype], ["batch", 1]) for t in signature.inputs]
    assert [i.name for i in graph.graph.input] == list(recipe.data.features)
    assert graph.graph.input[6].type.tensor_type.elem_type == onnx.TensorProto.STRING  # contract
    # probabilities [batch, 2] and the label [batch, 1] as text
    assert _described(graph.graph.output) == [
        ("probabilities", onnx.TensorProto.FLOAT, ["batch", 2]), ("label", onnx.TensorProto.STRING, ["batch", 1]),
    ]
    assert _described(graph.graph.output) == [(t.name, ONNX_TYPES[t.dtype], ["batch", t.width]) for t in signature.outputs]
    # single file: no initializer points at external data, and nothing else was written
    assert all(t.data_location == onnx.TensorProto.DEFAULT for t in graph.graph.initializer)
    assert [p.name for p in onnx_file.parent.iterdir()] == ["model.onnx"]
    props = {p.key: p.value for p in graph.metadata_props}
    assert json.loads(props["mlops.columns"]) == [{"name": t.name, "datatype": t.dtype} for t in signature.inputs]
    assert json.loads(props["mlops.classes"]) == pipeline.class_names == ["0", "1"]
    assert props["mlops.task"] == "classification"
    # ONNX Runtime sees the same contract
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    assert [(i.name, i.type) for i in session.get_inputs()] == [
        (t.name, "tensor(string)" if t.dtype == "BYTES" else "tensor(float)") for t in signature.inputs
    ]
    assert [(o.name, o.type) for o in session.get_outputs()] == [("probabilities", "tensor(float)"), ("label", "tensor(string)")]


def test_export_refuses_a_graph_that_is_not_the_signature(onnx_file, tmp_path):
    """save_served checks the wrapped graph's tensors against the signature."""
    graph = onnx.load(str(onnx_file))
    other = model_signature(load("serving.format=torchscript"))  # outputs probabilities__0, label__1
    with pytest.raises(MlopsError, match="differ from the signature"):
        export_mod.save_served(graph, other, tmp_path / "model.onnx")
    assert export_mod.save_served(graph, model_signature(load()), tmp_path / "again.onnx").is_file()


@pytest.mark.parametrize("batch", [1, 37])
def test_onnx_runtime_matches_torch(trained, onnx_file, pipeline, split, batch):
    rows = split[1].head(batch)
    got = ort_run(onnx_file, pipeline.raw_inputs(rows))  # raw columns: the graph encodes them
    with torch.no_grad():
        expected = trained(torch.from_numpy(pipeline.transform(rows))).numpy()
    assert got["probabilities"].shape == (batch, 2) and got["label"].shape == (batch, 1)
    np.testing.assert_allclose(got["probabilities"], expected, atol=1e-5, rtol=0)
    assert got["label"][:, 0].tolist() == [pipeline.class_names[i] for i in expected.argmax(axis=1)]
    assert export_mod.parity(trained, pipeline, onnx_file, rows) <= 1e-5


def test_onnx_labels_are_the_class_names(trained, recipe, split, tmp_path):
    """Classes named in in_set (bronze/silver/...) come back as those names."""
    named = load("data.expectations.columns.churned.in_set=[stay,leave]")
    train = split[0].assign(churned=split[0]["churned"].map({0: "stay", 1: "leave"}))
    fitted = FeaturePipeline.fit(named, train)
    assert fitted.class_names == ["stay", "leave"]
    path = export_mod.export_onnx(trained, named, fitted, tmp_path / "model.onnx")
    got = ort_run(path, fitted.raw_inputs(split[1].head(50)))
    assert got["label"][:, 0].tolist() == [["stay", "leave"][i] for i in got["probabilities"].argmax(axis=1)]
    assert json.loads({p.key: p.value for p in onnx.load(str(path)).metadata_props}["mlops.classes"]) == ["stay", "leave"]


def test_parity_checks_the_label_too(trained, onnx_file, pipeline, split, tmp_path):
    """A graph whose labels disagree with its probabilities fails parity (inf), even with
    the probabilities exactly torch's."""
    rows = split[1].head(64)
    assert export_mod.parity(trained, pipeline, onnx_file, rows) <= 1e-5
    graph = onnx.load(str(onnx_file))
    (classes,) = [t for t in graph.graph.initializer if t.name == "mlops::classes"]
    classes.CopyFrom(onnx.numpy_helper.from_array(np.array(["1", "0"], dtype=object), "mlops::classes"))
    swapped = tmp_path / "swapped.onnx"
    onnx.save(graph, str(swapped))
    got = ort_run(swapped, pipeline.raw_inputs(rows))
    with torch.no_grad():
        expected = trained(torch.from_numpy(pipeline.transform(rows))).numpy()
    np.testing.assert_allclose(got["probabilities"], expected, atol=1e-5, rtol=0)  # scores unchanged
    assert export_mod.parity(trained, pipeline, swapped, rows) == float("inf")


def _encoded(onnx_path, width: int, feed: dict[str, np.ndarray]) -> np.ndarray:
    """The graph's encoded matrix (the network's input, after the in-graph imputation and
    one-hot), exposed as an extra output."""
    graph = onnx.load(str(onnx_path))
    name = NET_PREFIX + export_mod.NETWORK_INPUT
    graph.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, ["batch", width]))
    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run([name], feed)[0]


def test_in_graph_imputation_equals_the_pipeline(onnx_file, pipeline, split, trained):
    """Nulls (NaN, None, "") and unseen categories: the graph encodes the rows exactly as
    FeaturePipeline.transform does (the training encoding): medians, no category."""
    rows = messy(split[1])
    feed = pipeline.raw_inputs(rows)
    assert np.isnan(feed["total_charges"][[0, 1, 3], 0]).all() and feed["contract"][1, 0] == ""
    expected = pipeline.transform(rows)
    np.testing.assert_array_equal(_encoded(onnx_file, pipeline.width, feed), expected)
    column = pipeline.columns.index("total_charges")
    assert expected[[0, 1, 3], column].tolist() == [pytest.approx(pipeline.medians["total_charges"])] * 3
    assert expected[0, 6:9].tolist() == [0, 0, 0] and expected[1, 6:9].tolist() == [0, 0, 0]  # unseen, null
    assert expected[4, 9:13].tolist() == [0, 0, 0, 0]  # "CARD" is not "card"
    with torch.no_grad():
        scores = trained(torch.from_numpy(expected)).numpy()
    np.testing.assert_allclose(ort_run(onnx_file, feed)["probabilities"], scores, atol=1e-5, rtol=0)
    assert export_mod.parity(trained, pipeline, onnx_file, rows) <= 1e-5


def test_regression_with_batch_norm_exports_a_prediction(split, tmp_path):
    regression = load(
        "model.task=regression", "evaluation.metrics=[mse,mae]", "+model.batch_norm=true",
        "~evaluation.gates.min_accuracy", "~evaluation.gates.min_roc_auc", "~evaluation.gates.fairness",
        "~data.expectations.table.min_class_fraction",
    )
    fitted = FeaturePipeline.fit(regression, split[0])
    assert fitted.classes is None and fitted.class_names is None and fitted.targets(split[1]).dtype == np.float32
    model = build_model(regression, fitted)
    model.train()
    model.logits(torch.from_numpy(fitted.transform(split[0].head(64))))  # move batch-norm running stats
    path = export_mod.export_onnx(model, regression, fitted, tmp_path / "model.onnx")
    graph = onnx.load(str(path))
    assert _described(graph.graph.output) == [("prediction", onnx.TensorProto.FLOAT, ["batch", 1])]
    assert [i.name for i in graph.graph.input] == list(regression.data.features)
    assert "mlops.classes" not in {p.key for p in graph.metadata_props}
    assert model.training  # export ran in eval mode and put the mode back
    assert export_mod.parity(model, fitted, path, split[1].head(16)) <= 1e-5


def test_torchscript_export_matches_torch(trained, pipeline, split, tmp_path):
    path = export_mod.export_torchscript(trained, pipeline, tmp_path / "model.pt")
    loaded = export_mod.load_torchscript(path)
    rows = pd.concat([messy(split[1]), split[1].head(3)], ignore_index=True)  # 9: another batch size than the trace's
    raw = pipeline.raw_inputs(rows)
    arguments = [
        [str(v) for v in raw[c][:, 0]] if c in pipeline.categorical else torch.from_numpy(raw[c]) for c in pipeline.features
    ]
    with torch.no_grad():
        probabilities, labels = loaded(*arguments)  # one argument per raw column
        expected = trained(torch.from_numpy(pipeline.transform(rows)))
    torch.testing.assert_close(probabilities, expected, atol=1e-6, rtol=0)
    assert labels == [pipeline.class_names[i] for i in expected.argmax(dim=1).tolist()]
    assert trained.training is False  # export restored the mode it found
    assert loaded.classes == ["0", "1"]
    # the same answers as the ONNX graph on the same raw rows
    onnx_path = export_mod.export_onnx(trained, load(), pipeline, tmp_path / "model.onnx")
    got = ort_run(onnx_path, raw)
    np.testing.assert_allclose(probabilities.numpy(), got["probabilities"], atol=1e-5, rtol=0)
    assert labels == got["label"][:, 0].tolist()


# ----------------------------------------------------------------------------- regression
HOUSING_OVERRIDES = (
    "data.features=[size,rooms,age,region]", "data.categorical=[region]", "data.target=price", "data.extra_columns=[]",
    "~data.expectations.columns", "~data.expectations.table.min_class_fraction",
    "model.task=regression", "evaluation.metrics=[mse,mae,r2]",
    "~evaluation.gates.min_accuracy", "~evaluation.gates.min_roc_auc", "~evaluation.gates.fairness",
)
REGIONS = {"north": 150.0, "south": -100.0, "east": 50.0, "west": -100.0}


def housing_table(rows: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Price = linear in size, rooms and age + a region offset + noise: mean ~600, sd ~300."""
    rng = np.random.default_rng(seed)
    size = rng.normal(120, 40, rows)
    rooms = rng.integers(1, 7, rows).astype(float)
    age = rng.uniform(0, 60, rows)
    region = rng.choice(list(REGIONS), rows)
    price = 600 + 6.5 * (size - 120) + 30 * (rooms - 3.5) - 3 * (age - 30) + np.vectorize(REGIONS.get)(region)
    price = price + rng.normal(0, 50, rows)
    frame = pd.DataFrame({"size": size, "rooms": rooms, "age": age, "region": region, "price": price})
    frame.loc[rng.random(rows) < 0.02, "size"] = np.nan  # a few nulls, imputed
    return frame


@pytest.fixture(scope="module")
def housing():
    """(recipe, pipeline, model, validation rows, final validation metrics): trained by
    EpochRunner (the recipe's default epochs, batch size and optimizer) on 1,600 rows."""
    recipe = load(*HOUSING_OVERRIDES)
    frame = housing_table()
    train, validation = frame.iloc[:1600].reset_index(drop=True), frame.iloc[1600:].reset_index(drop=True)
    pipeline = FeaturePipeline.fit(recipe, train)
    arrays = {"x_train": pipeline.transform(train), "y_train": pipeline.targets(train),
              "x_val": pipeline.transform(validation), "y_val": pipeline.targets(validation)}
    runner = EpochRunner(recipe, pipeline.to_dict(), arrays)
    for epoch in range(recipe.training.epochs):
        runner.train_epoch(epoch)
    metrics = runner.validate()
    return recipe, pipeline, runner.model.eval(), validation, metrics


def _r2(predicted: np.ndarray, actual: np.ndarray) -> float:
    return 1 - float(np.sum((actual - predicted) ** 2) / np.sum((actual - actual.mean()) ** 2))


def test_the_housing_table_is_the_hard_case():
    price = housing_table()["price"]
    assert 550 < price.mean() < 650 and 250 < price.std() < 350


def test_a_regression_target_far_from_zero_learns(housing):
    recipe, pipeline, model, validation, metrics = housing
    assert recipe.training.epochs == 10 and recipe.model.hidden_sizes == [64, 32]  # the defaults, untuned
    # the target is standardised by the training split's mean and sd, kept as buffers
    assert pipeline.target_mean == pytest.approx(600, abs=50) and pipeline.target_std == pytest.approx(300, abs=50)
    assert float(model.target_mean) == pytest.approx(pipeline.target_mean)
    assert float(model.target_std) == pytest.approx(pipeline.target_std)
    assert pipeline.categorical == {"region": ["east", "north", "south", "west"]}  # learned: no in_set
    assert metrics["val_r2"] > 0.8, metrics
    # forward() answers in the target's units; logits() in standard deviations
    x = torch.from_numpy(pipeline.transform(validation))
    with torch.no_grad():
        prediction, standardised = model(x).numpy()[:, 0], model.logits(x).numpy()[:, 0]
    np.testing.assert_allclose(prediction, standardised * pipeline.target_std + pipeline.target_mean, rtol=1e-5)
    assert _r2(prediction, validation["price"].to_numpy()) == pytest.approx(metrics["val_r2"], abs=1e-4)
    assert abs(float(prediction.mean()) - 600) < 60
    assert float(np.abs(standardised).mean()) < 3  # scale-free inside


def test_the_exported_regression_graph_answers_in_target_units(housing, tmp_path):
    recipe, pipeline, model, validation, metrics = housing
    path = export_mod.export_onnx(model, recipe, pipeline, tmp_path / "model.onnx")
    graph = onnx.load(str(path))
    assert _described(graph.graph.input) == [
        ("size", onnx.TensorProto.FLOAT, ["batch", 1]), ("rooms", onnx.TensorProto.FLOAT, ["batch", 1]),
        ("age", onnx.TensorProto.FLOAT, ["batch", 1]), ("region", onnx.TensorProto.STRING, ["batch", 1]),
    ]
    assert _described(graph.graph.output) == [("prediction", onnx.TensorProto.FLOAT, ["batch", 1])]
    feed = pipeline.raw_inputs(validation)
    assert np.isnan(feed["size"]).any()  # the nulls go in as they are
    prediction = ort_run(path, feed)["prediction"]
    assert prediction.shape == (len(validation), 1)
    with torch.no_grad():
        expected = model(torch.from_numpy(pipeline.transform(validation))).numpy()
    np.testing.assert_allclose(prediction, expected, rtol=1e-5, atol=1e-3)
    actual = validation["price"].to_numpy()
    assert _r2(prediction[:, 0], actual) > 0.8
    assert abs(float(prediction.mean()) - actual.mean()) < 60  # dollars, not standard deviations
    assert export_mod.parity(model, pipeline, path, validation) <= 1e-5  # in target sds


def test_in_graph_imputation_of_the_regression_graph(housing, tmp_path):
    recipe, pipeline, model, validation, _ = housing
    path = export_mod.export_onnx(model, recipe, pipeline, tmp_path / "model.onnx")
    rows = validation.head(5).copy()
    rows["size"] = pd.Series([np.nan, None, 80.0, np.nan, 150.0], dtype=object)
    rows["region"] = ["north", None, "atlantis", "", "west"]
    feed = pipeline.raw_inputs(rows)
    expected = pipeline.transform(rows)
    np.testing.assert_array_equal(_encoded(path, pipeline.width, feed), expected)
    assert expected[[0, 1, 3], 0].tolist() == [pytest.approx(pipeline.medians["size"])] * 3
    assert expected[1:4, 3:].sum(axis=1).tolist() == [0, 0, 0]  # null, unseen, empty: no region
    with torch.no_grad():
        scores = model(torch.from_numpy(expected)).numpy()
    np.testing.assert_allclose(ort_run(path, feed)["prediction"], scores, rtol=1e-5, atol=1e-3)


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


def ms_per_run(*durations_ms: float):
    """A perf_counter_ns stand-in: timed run i takes durations_ms[i] (the last one repeats)."""
    reads = itertools.count()

    def clock() -> int:
        n = next(reads)
        run, end = divmod(n, 2)
        return run * 10**9 + round(end * durations_ms[min(run, len(durations_ms) - 1)] * 1e6)

    return clock


def test_gates_pass(recipe, onnx_file):
    report = run_gates(recipe, GOOD, onnx_file, onnx_file.stat().st_size, 0.02, 1e-7, latency_runs=30,
                       clock=ms_per_run(1.0))
    assert report.passed, report.to_dict()
    names = [r.name for r in report.results]
    assert names == [
        "min_accuracy", "min_roc_auc", "max_latency_p95_ms", "max_model_size_mb", "fairness.max_disparity",
        "onnx_parity_atol",
    ]
    latency = report.results[2]
    assert latency.observed == pytest.approx(1.0) and latency.threshold == 20
    raise_for_failures(report)  # no failure, no error
    assert json.loads(json.dumps(report.to_dict()))["passed"] is True


def test_failed_gates_name_their_recipe_keys(onnx_file):
    strict = load(
        "evaluation.gates.min_accuracy=0.99", "evaluation.gates.max_model_size_mb=0.001",
        "evaluation.gates.max_latency_p95_ms=0.000001",
    )
    report = run_gates(strict, GOOD, onnx_file, onnx_file.stat().st_size, 0.25, 1e-3, latency_runs=10,
                       clock=ms_per_run(1.0))
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


def test_latency_is_the_p95_of_the_timed_runs_on_onnx_runtime(onnx_file):
    clock = ms_per_run(*range(1, 51))  # timed run i takes i + 1 ms; warm-up runs read no clock
    assert latency_p95_ms(onnx_file, runs=50, clock=clock) == pytest.approx(np.percentile(np.arange(1, 51), 95))
    assert clock() == 50 * 10**9  # two reads per timed run, none more
    assert latency_p95_ms(onnx_file, runs=5) > 0  # the real clock: one raw row ran the encoding's full path
