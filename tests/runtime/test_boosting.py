"""model.architecture lightgbm: LightGBM's trees on the MLP's path, the same raw-column
contract out (ONNX through onnxmltools, wrapped by the in-graph preprocessing)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from framework import api
from framework.errors import RecipeError
from framework.runtime.training import boosting, export
from framework.runtime.training.features import FeaturePipeline
from framework.runtime.training.metrics_eval import evaluate
from framework.signature import model_signature
from tests.conftest import REPO, run_cli


def load(*overrides: str):
    return api.load_recipe("churn", overrides=["model=lightgbm", *overrides], project=REPO).recipe


def arrays_of(recipe, train: pd.DataFrame, val: pd.DataFrame):
    pipeline = FeaturePipeline.fit(recipe, train)
    arrays = {"x_train": pipeline.transform(train), "y_train": pipeline.targets(train),
              "x_val": pipeline.transform(val), "y_val": pipeline.targets(val)}
    return pipeline, arrays


@pytest.fixture(scope="module")
def churn():
    frame = pd.read_csv(REPO / "data" / "churn.csv")
    recipe = load()
    pipeline, arrays = arrays_of(recipe, frame.iloc[:4000], frame.iloc[4000:])
    return recipe, pipeline, arrays, frame.iloc[4000:].reset_index(drop=True)


@pytest.fixture(scope="module")
def grown(churn):
    recipe, _, arrays, _ = churn
    return boosting.fit(recipe, arrays)


def house(rows: int = 3000, seed: int = 3) -> pd.DataFrame:
    """A regression table with a categorical column, nulls and a target far from 0."""
    rng = np.random.default_rng(seed)
    area = rng.uniform(30, 200, rows)
    city = rng.choice(["tokyo", "osaka", "nagoya"], rows)
    price = 150 + 3.0 * area + np.select([city == "tokyo", city == "osaka"], [200, 80], 0) + rng.normal(0, 30, rows)
    frame = pd.DataFrame({"area": area, "city": city, "price": price})
    frame.loc[:29, "area"] = np.nan
    return frame


def test_the_churn_classifier_learns_and_stops_early(churn, grown):
    recipe, _, arrays, _ = churn
    assert 0 < grown.best_iteration < grown.rounds <= 1000  # early stopping ended it
    assert grown.rounds - grown.best_iteration == recipe.training.early_stopping.patience
    metrics = evaluate(recipe, boosting.predict(grown.booster(), arrays["x_val"], "classification"), arrays["y_val"])
    assert metrics["accuracy"] > 0.72 and metrics["roc_auc"] > 0.78  # the recipe's own gates
    assert grown.booster().num_trees() == grown.best_iteration  # only the kept round's trees


def test_exported_graph_is_the_signature_and_matches_the_booster(churn, grown, tmp_path):
    import onnxruntime as ort

    recipe, pipeline, _, val = churn
    path = boosting.export_onnx(grown.booster(), recipe, pipeline, tmp_path / "model.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    signature = model_signature(recipe)
    assert [i.name for i in session.get_inputs()] == list(signature.columns)
    assert [(o.name, o.type) for o in session.get_outputs()] == [("probabilities", "tensor(float)"),
                                                                ("label", "tensor(string)")]
    assert boosting.parity(grown.booster(), pipeline, path, val.iloc[:256]) < 1e-5
    rows = val.iloc[:5].copy()
    rows.loc[0, "total_charges"], rows.loc[1, "contract"] = np.nan, "weekly"  # imputed; no category
    probabilities, labels = session.run(None, pipeline.raw_inputs(rows))
    expected = boosting.predict(grown.booster(), pipeline.transform(rows), "classification")
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)
    assert labels.reshape(-1).tolist() == [pipeline.class_names[i] for i in expected.argmax(axis=1)]


def test_regression_trees_answer_in_the_targets_units(tmp_path):
    import onnxruntime as ort

    frame = house()
    recipe = api.load_recipe("churn", project=REPO, overrides=[
        "model=lightgbm", "model.task=regression", "data.target=price", "data.features=[area,city]",
        "data.categorical=[city]", "~data.expectations.columns", "~data.expectations.table.min_class_fraction",
        "evaluation.metrics=[r2,rmse]", "~evaluation.gates.min_accuracy", "~evaluation.gates.min_roc_auc",
        "~evaluation.gates.fairness",
    ]).recipe
    pipeline, arrays = arrays_of(recipe, frame.iloc[:2400], frame.iloc[2400:])
    grown = boosting.fit(recipe, arrays)
    scores = boosting.predict(grown.booster(), arrays["x_val"], "regression")
    assert evaluate(recipe, scores, arrays["y_val"])["r2"] > 0.9
    path = boosting.export_onnx(grown.booster(), recipe, pipeline, tmp_path / "model.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["prediction"]
    (prediction,) = session.run(None, pipeline.raw_inputs(frame.iloc[2400:2410]))
    np.testing.assert_allclose(prediction, scores[:10], rtol=1e-5)
    assert 300 < float(prediction.mean()) < 900  # dollars, not standard deviations
    assert boosting.parity(grown.booster(), pipeline, path, frame.iloc[2400:2656]) < 1e-5


def test_boosting_keys_reach_lightgbm(churn):
    recipe, _, arrays, _ = churn
    stumps = load("model.boosting.num_leaves=2", "model.boosting.num_boost_round=5", "+training.early_stopping=null")
    grown = boosting.fit(stumps, arrays)
    assert grown.rounds == 5 and grown.booster().num_trees() == 5
    text = grown.model_text
    assert "num_leaves=2" in text.split("end of trees")[0]
    options = boosting.params(load("model.boosting.learning_rate=0.2", "model.num_classes=3"), threads=1)
    assert (options["objective"], options["num_class"], options["learning_rate"]) == ("multiclass", 3, 0.2)
    assert boosting.params(recipe, threads=2)["objective"] == "binary"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["serving.format=torchscript"], r"model\.architecture lightgbm exports to ONNX .*serving\.format: onnx"),
        (["training=pytorchjob_gpu"], r"model\.architecture lightgbm trains with Ray Train's LightGBMTrainer"),
        (["+training.distillation={teacher: 'models:/big@champion'}"], r"cannot be a distillation student"),
    ],
)
def test_what_trees_cannot_do_is_refused(overrides, message):
    with pytest.raises(RecipeError, match=message):
        load(*overrides)


def test_boosting_without_lightgbm_is_refused():
    with pytest.raises(RecipeError, match=r"model\.boosting sets LightGBM's trees but model\.architecture is mlp"):
        api.load_recipe("churn", overrides=["+model.boosting={num_leaves: 15}"], project=REPO)


@pytest.mark.slow
def test_apply_trains_trees_on_ray_train_and_serves_the_same_contract(churn_project: Path) -> None:
    import orjson

    from framework.runtime.serving.host import EmbeddedServer, build_app

    recipe_file = churn_project / "recipes" / "churn.yaml"
    recipe_file.write_text(recipe_file.read_text().replace("  - model: mlp\n", "  - model: lightgbm\n"))
    result = run_cli("apply", "churn")
    assert result.exit_code == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "LightGBM:" in result.stderr and "model version 1 (candidate), gates passed" in result.stdout
    served = churn_project / ".mlops" / "model_repository" / "churn" / "1" / "model.onnx"
    assert served.is_file()

    recipe = api.load_recipe("churn", project=churn_project).recipe
    app = build_app(recipe, churn_project / ".mlops" / "model_repository", churn_project / ".mlops", log_sample_rate=0)
    row = {"tenure_months": 3, "monthly_charges": 95.0, "total_charges": None, "support_calls": 5, "num_products": 1,
           "senior_citizen": 0, "contract": "month_to_month", "payment_method": "electronic_check"}
    import http.client

    with EmbeddedServer(app) as server:
        host, port = server.url.rsplit(":", 1)
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        connection.request("POST", "/v2/models/churn/infer", body=orjson.dumps([row]))
        answer = orjson.loads(connection.getresponse().read())
    outputs = {o["name"]: o["data"] for o in answer["outputs"]}
    assert outputs["label"] in (["0"], ["1"]) and abs(sum(outputs["probabilities"]) - 1.0) < 1e-5


@pytest.mark.slow
def test_hpo_searches_the_trees_settings(churn_project: Path) -> None:
    recipe_file = churn_project / "recipes" / "churn.yaml"
    text = recipe_file.read_text().replace("  - model: mlp\n", "  - model: lightgbm\n")
    recipe_file.write_text(text + (
        "training:\n  hpo:\n    n_trials: 3\n    metric: roc_auc\n    search_space:\n"
        "      model.boosting.num_leaves: {type: int, low: 4, high: 64, log: true}\n"
        "      model.boosting.learning_rate: {type: float, low: 0.01, high: 0.3, log: true}\n"
    ))
    result = run_cli("apply", "churn")
    assert result.exit_code == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "trial 3/3" in result.stderr and "HPO trials by roc_auc" in result.stderr
    assert "model.boosting.num_leaves" in result.stderr


@pytest.mark.parametrize("model", ["lightgbm", "linear"])
@pytest.mark.parametrize("key", ["hidden_sizes=[16]", "dropout=0.2", "activation=gelu", "batch_norm=true"])
def test_network_keys_without_hidden_layers_are_refused(model, key):
    name = key.split("=")[0]
    with pytest.raises(RecipeError, match=rf"model\.{name} shapes hidden layers, which model\.architecture {model} "
                                          rf"has none of: drop model\.{name}, or use architecture mlp"):
        api.load_recipe("churn", overrides=[f"model={model}", f"++model.{key}"], project=REPO)


def test_the_linear_group_loads_with_its_empty_hidden_layers():
    assert api.load_recipe("churn", overrides=["model=linear"], project=REPO).recipe.model.hidden_sizes == []
