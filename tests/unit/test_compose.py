"""Composition: every example in every env, env overlays, overrides, Hydra isolation."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from framework import api
from framework.errors import RecipeError
from tests.conftest import REPO

EXAMPLES = [(r, e) for r in ("churn", "churn_features", "support_assistant") for e in ("dev", "staging", "prod")]


@pytest.mark.parametrize(("recipe", "env"), EXAMPLES)
def test_every_example_validates_in_every_env(recipe: str, env: str) -> None:
    validated = api.load_recipe(recipe, env=env, project=REPO)
    assert validated.recipe.environment == env


def test_validate_all_recipes_all_envs() -> None:
    result = api.validate(all_envs=True, project=REPO)
    assert result.ok, [str(p) for s in result.statuses for p in s.problems]
    assert {(s.recipe, s.env) for s in result.statuses} == set(EXAMPLES)


def test_env_overlays_change_replicas_namespace_tracking_and_gpu_type() -> None:
    dev, prod = (api.load_recipe("support_assistant", env=e, project=REPO).recipe for e in ("dev", "prod"))
    assert (dev.serving.replicas.min, prod.serving.replicas.min) == (1, 3)
    assert (dev.deploy.namespace, prod.deploy.namespace) == ("ml-dev", "ml-prod")
    assert dev.tracking.uri is None
    assert prod.tracking.uri == "http://mlflow.ml-platform.svc.cluster.local:5000"
    assert (dev.serving.resources.gpu_type, prod.serving.resources.gpu_type) == ("nvidia-l4", "nvidia-h100-80gb")


def test_tracking_uri_follows_the_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000")
    assert api.load_recipe("churn", env="staging", project=REPO).recipe.tracking.uri == "http://mlflow.example:5000"


@pytest.mark.parametrize("training", ["ray_cpu", "ray_gpu", "pytorchjob_gpu"])
@pytest.mark.parametrize("rollout", ["direct", "canary", "shadow", "bandit", "blue_green"])
def test_churn_composes_with_every_training_and_rollout_option(training: str, rollout: str) -> None:
    recipe = api.load_recipe("churn", overrides=[f"training={training}", f"rollout={rollout}"], project=REPO).recipe
    assert recipe.rollout.strategy == rollout
    assert recipe.training.engine == ("pytorchjob" if training.startswith("pytorchjob") else "ray")


def test_churn_on_ray_serve_and_llm_on_quantized_model() -> None:
    assert api.load_recipe("churn", overrides=["serving=ray_serve"], project=REPO).recipe.serving.backend == "ray_serve"
    llm = api.load_recipe("support_assistant", overrides=["model=qwen_awq"], project=REPO).recipe
    assert llm.model.quantization == "awq"


def test_overrides_in_hydra_syntax() -> None:
    recipe = api.load_recipe(
        "churn", overrides=["training.epochs=3", "+deploy.labels.team=risk", "serving.dynamic_batching.preferred_batch_sizes=[4,8]"],
        project=REPO,
    ).recipe
    assert recipe.training.epochs == 3
    assert recipe.deploy.labels["team"] == "risk"
    assert recipe.serving.dynamic_batching.preferred_batch_sizes == [4, 8]


def test_recipe_given_as_a_path() -> None:
    recipe = api.load_recipe(str(REPO / "recipes" / "churn.yaml"), project=REPO).recipe
    assert recipe.name == "churn"


def test_no_hydra_state_leaks_between_calls() -> None:
    for _ in range(3):
        api.load_recipe("churn", project=REPO)
        assert not GlobalHydra.instance().is_initialized()
    with pytest.raises(RecipeError):
        api.load_recipe("churn", overrides=["serving=nope"], project=REPO)
    assert not GlobalHydra.instance().is_initialized()


def test_a_surrounding_hydra_app_keeps_its_state(tmp_path: Path) -> None:
    (tmp_path / "app.yaml").write_text("greeting: hello\n")
    with initialize_config_dir(config_dir=str(tmp_path), version_base=None):
        api.load_recipe("churn", project=REPO)
        assert GlobalHydra.instance().is_initialized()
        assert compose("app").greeting == "hello"


def test_overrides_do_not_stick_to_later_calls() -> None:
    api.load_recipe("churn", overrides=["training.epochs=3"], project=REPO)
    assert api.load_recipe("churn", project=REPO).recipe.training.epochs == 10


OVERRIDE_SETS = [
    [],
    ["training=ray_gpu", "training.epochs=3", "+deploy.labels.team=risk", "rollout=bandit"],
    ["serving=ray_serve", "~monitoring.drift", "serving.dynamic_batching.preferred_batch_sizes=[4,8]"],
]


@pytest.mark.parametrize("overrides", OVERRIDE_SETS, ids=["plain", "groups-values-additions", "deletions-lists"])
@pytest.mark.parametrize(("recipe", "env"), [("churn", "dev"), ("churn", "prod"), ("support_assistant", "staging")])
def test_composition_equals_hydras_compose_api(recipe: str, env: str, overrides: list[str]) -> None:
    from omegaconf import OmegaConf

    from framework.project import Project
    from framework.recipe.compose import compose_recipe
    from framework.recipe.hydra_engine import VERSION_BASE

    if recipe == "support_assistant":
        overrides = [o for o in overrides if not o.startswith(("training", "serving", "~monitoring"))]
    with initialize_config_dir(config_dir=str(REPO / "recipes"), version_base=VERSION_BASE):
        expected = OmegaConf.to_container(compose(recipe, [*overrides, f"env={env}"]), resolve=True)
    assert compose_recipe(Project.discover(REPO), recipe, env, overrides).config == expected
