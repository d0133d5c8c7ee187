"""The HPO pieces that need no Ray: the Optuna space, decoding, trial recipes, results."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from pydantic import ValidationError

from framework import api
from framework.runtime.training import hpo
from tests.conftest import copy_project

HPO = ("+training.hpo={metric: roc_auc, n_trials: 3, search_space: {"
       "training.optimizer.lr: {type: float, low: 0.0001, high: 0.1, log: true}, "
       "training.batch_size: {type: int, low: 32, high: 256, step: 32}, "
       "model.hidden_sizes: {type: categorical, choices: [[16], [64, 32]]}}}")


@pytest.fixture(scope="module")
def recipe(tmp_path_factory: pytest.TempPathFactory):
    root = copy_project(tmp_path_factory.mktemp("hpo"), ("recipes",))
    return api.load_recipe("churn", overrides=[HPO], project=root).recipe


def test_the_space_is_optunas_define_by_run_and_decodes_to_recipe_values(recipe) -> None:
    space = hpo.DefineByRun(recipe.training.hpo.search_space)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    seen = []
    for _ in range(20):
        trial = study.ask()
        space(trial)
        values = hpo.decode(recipe.training.hpo.search_space, trial.params)
        seen.append(values)
        study.tell(trial, 0.5)
        assert 0.0001 <= values["training.optimizer.lr"] <= 0.1
        assert values["training.batch_size"] in range(32, 257, 32)
        assert values["model.hidden_sizes"] in ([16], [64, 32])
    assert {tuple(v["model.hidden_sizes"]) for v in seen} == {(16,), (64, 32)}
    distributions = study.trials[0].distributions
    assert distributions["training.optimizer.lr"].log is True
    assert distributions["training.batch_size"].step == 32


def test_a_trial_recipe_carries_the_values_and_is_validated_again(recipe) -> None:
    trial = hpo.with_values(recipe, {"training.optimizer.lr": 0.02, "model.hidden_sizes": [16]})
    assert trial.training.optimizer.lr == 0.02 and trial.model.hidden_sizes == [16]
    assert recipe.training.optimizer.lr != 0.02  # the base recipe is untouched
    with pytest.raises(ValidationError):
        hpo.with_values(recipe, {"training.batch_size": 0})


def test_loss_is_the_validation_loss_and_other_metrics_their_val_key(recipe) -> None:
    assert hpo.reported_metric(recipe.training.hpo) == "val_roc_auc"
    minimise = recipe.training.hpo.model_copy(update={"metric": "loss"})
    assert hpo.reported_metric(minimise) == "val_loss"


def test_a_search_result_survives_a_restart_and_its_table_puts_the_best_first(tmp_path: Path) -> None:
    trials = [{"trial": 1, "values": {"training.optimizer.lr": 0.1}, "score": 0.4, "status": "FINISHED"},
              {"trial": 2, "values": {"training.optimizer.lr": 0.01}, "score": 0.2, "status": "FINISHED"},
              {"trial": 3, "values": {"training.optimizer.lr": 1.0}, "score": None, "status": "FAILED"}]
    result = hpo.SearchResult({"training.optimizer.lr": 0.01}, 0.2, "loss", trials, "minimize")
    hpo.save(result, tmp_path / "hpo.json")
    assert hpo.load(tmp_path / "hpo.json") == result
    assert hpo.load(tmp_path / "missing.json") is None
    table = hpo.trials_table(result)
    first_column = list(table.columns[0].cells)
    assert first_column == ["2", "1", "3"]  # minimise: the lowest loss first, failures last
    assert list(table.columns[-1].cells)[0] == "FINISHED (best)"


@pytest.mark.parametrize("sampler", ["tpe", "random", "cmaes"])
def test_every_sampler_searches_the_recipe_space(recipe, sampler: str) -> None:
    settings = recipe.training.hpo.model_copy(update={"sampler": sampler, "seed": 3})
    study = optuna.create_study(sampler=hpo.make_sampler(settings), direction="minimize")
    space = hpo.DefineByRun(settings.search_space)

    def objective(trial) -> float:
        space(trial)
        values = hpo.decode(settings.search_space, trial.params)
        return abs(values["training.optimizer.lr"] - 0.01) + values["training.batch_size"] / 1000

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study.optimize(objective, n_trials=12)
    assert len(study.trials) == 12 and study.best_value < 0.3


def test_dry_run_lists_the_search_and_the_teacher_before_training(project: Path) -> None:
    from tests.conftest import run_cli

    recipe = project / "recipes" / "churn.yaml"
    recipe.write_text(recipe.read_text().replace("  - training: ray_cpu\n", "  - training: ray_cpu_hpo\n")
                      + "training:\n  distillation:\n    teacher: models:/big@champion\n")
    result = run_cli("apply", "churn", "--dry-run")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[3] == ("  3. teacher: soft targets from models:/big@champion (temperature 2.0, alpha 0.5) "
                        "[runs: no finished run of churn (dev) yet]")
    assert lines[4] == ("  4. hpo: 8 Optuna trials (tpe, 2 at once) on Ray Tune over training.optimizer.lr, "
                        "training.optimizer.weight_decay, model.hidden_sizes, maximize roc_auc; "
                        "the best values train the final model [runs: no finished run of churn (dev) yet]")
    assert lines[5].startswith("  5. train: Ray Train")
