"""A recipe with no model repository on disk (Ray Serve) serves the registry's champion
and candidate, fetched from MLflow: the embedded store, or the team's server over HTTP."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from framework import api
from tests.conftest import REPO
from tests.mlflow_server import server_overrides, unique_name
from tests.serving.conftest import messy_inputs, ort_outputs

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("store", ["sqlite", "server"])
def test_champion_and_candidate_from_the_registry(store, tmp_path, model_repo, monkeypatch, request):
    from framework.runtime import tracking
    from framework.runtime.serving.host import build_app

    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    overrides = ["serving=ray_serve"]
    if store == "server":
        overrides += server_overrides(request.getfixturevalue("mlflow_server"), unique_name("churn"))
    recipe = api.load_recipe("churn", overrides=overrides, project=REPO).recipe
    state = tmp_path / ".mlops"
    with tracking.Tracker(recipe, state, run_name="one") as run:
        for version in ("1", "2"):
            staged = tmp_path / f"v{version}" / "model.onnx"
            staged.parent.mkdir()
            shutil.copy(model_repo / "churn" / version / "model.onnx", staged)
            run.log_artifact_file(staged, f"model{version}")
        first = tracking.register(run, "model1", recipe.registered_model)
        second = tracking.register(run, "model2", recipe.registered_model)
    tracking.set_alias(recipe.registered_model, "champion", first, uri=run.uri)
    tracking.set_alias(recipe.registered_model, "candidate", second, uri=run.uri)

    app = build_app(recipe, None, state, log_sample_rate=0)
    assert app.repository.path == state / "serving" / "model_repository"
    assert app.repository.versions() == {"churn": [first, second]}
    x = messy_inputs(3)
    for version, source in ((first, "1"), (second, "2")):
        runner = app.models["churn"].versions[version].runner
        out, expected = runner.run(x), ort_outputs(model_repo, source, x)
        np.testing.assert_allclose(out["probabilities"], expected["probabilities"], rtol=1e-6)
        assert out["label"].tolist() == expected["label"].tolist()
        assert runner.classes == ["0", "1"]  # the class names travel in the model file
    assert app.models["churn"].metadata()["parameters"] == {"classes": ["0", "1"]}
    assert app.models["churn"].config.max_batch_size == recipe.serving.max_batch_size == 32
    assert app.labels == {"churn": recipe.registered_model}  # the registered model each name serves


def test_an_unreachable_server_is_one_line(tmp_path, monkeypatch):
    from framework.errors import MlopsError
    from framework.runtime.serving.registry_source import fill_from_registry
    from tests.ray_head import free_port

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # MLflow's default retries for ~4 minutes first
    url = f"http://127.0.0.1:{free_port()}"
    recipe = api.load_recipe("churn", overrides=["serving=ray_serve", *server_overrides(url, unique_name("churn"))],
                             project=REPO).recipe
    with pytest.raises(MlopsError) as raised:
        fill_from_registry(recipe, tmp_path / ".mlops", "churn", "model.onnx")
    assert [str(p) for p in raised.value.problems] == [f"serving: cannot reach the MLflow server at {url}: Connection refused"]
