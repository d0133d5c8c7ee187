"""+training.early_stopping: when training stops, and which weights it keeps."""

from __future__ import annotations

import pytest
import torch

from framework import api
from framework.runtime.training.epochs import EarlyStop
from tests.conftest import REPO


def settings(*overrides: str):
    return api.load_recipe("churn", overrides=list(overrides), project=REPO).recipe.training.early_stopping


def weights(value: float) -> torch.nn.Module:
    module = torch.nn.Linear(1, 1)
    with torch.no_grad():
        module.weight.fill_(value)
    return module


def test_defaults_are_on_with_a_patience_of_10():
    assert (settings().patience, settings().min_delta) == (10, 0.0)
    assert api.load_recipe("churn", overrides=["+training.early_stopping=null"], project=REPO).recipe.training.early_stopping is None


def test_stops_after_patience_epochs_without_improvement_and_keeps_the_best_weights():
    early = EarlyStop(settings("+training.early_stopping.patience=2"))
    losses = [1.0, 0.5, 0.6, 0.7, 0.4]
    stops = [early.observe(epoch, loss, weights(float(epoch))) for epoch, loss in enumerate(losses[:4])]
    assert stops == [False, False, False, True]
    assert early.best_epoch == 1 and early.best_loss == 0.5
    kept = early.weights(weights(99.0))
    assert float(kept["weight"]) == 1.0  # epoch 1's weights, not the last epoch's


def test_an_improvement_smaller_than_min_delta_does_not_count():
    early = EarlyStop(settings("+training.early_stopping.patience=1", "+training.early_stopping.min_delta=0.1"))
    assert early.observe(0, 1.0, weights(0.0)) is False
    assert early.observe(1, 0.95, weights(1.0)) is True
    assert early.best_epoch == 0


def test_without_early_stopping_the_last_epoch_is_kept():
    early = EarlyStop(None)
    for epoch, loss in enumerate([0.1, 0.9, 5.0]):
        assert early.observe(epoch, loss, weights(float(epoch))) is False
    assert float(early.weights(weights(2.0))["weight"]) == 2.0 and early.best_epoch == 2


def test_its_state_survives_a_resume():
    early = EarlyStop(settings("+training.early_stopping.patience=3"))
    early.observe(0, 0.5, weights(0.0))
    early.observe(1, 0.6, weights(1.0))
    resumed = EarlyStop(settings("+training.early_stopping.patience=3"))
    resumed.restore(early.state())
    assert resumed.observe(2, 0.7, weights(2.0)) is False
    assert resumed.observe(3, 0.8, weights(3.0)) is True  # the waiting counted across the resume
    assert float(resumed.weights(weights(3.0))["weight"]) == 0.0


@pytest.mark.parametrize("bad", ["+training.early_stopping.patience=0", "+training.early_stopping.min_delta=-1"])
def test_bad_settings_are_refused(bad: str):
    from framework.errors import RecipeError

    with pytest.raises(RecipeError, match=r"training\.early_stopping\.(patience|min_delta)"):
        settings(bad)


# --- training.lr_schedule -------------------------------------------------------------
def schedule_of(*overrides: str):
    from framework.runtime.training.epochs import make_scheduler

    training = api.load_recipe("churn", overrides=list(overrides), project=REPO).recipe.training
    optimizer = torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), lr=1.0)
    return training, optimizer, make_scheduler(training, optimizer)


def test_plateau_is_the_default_and_halves_the_rate_after_more_than_patience_epochs_without_improvement():
    training, optimizer, scheduler = schedule_of()
    assert (training.lr_schedule.name, training.lr_schedule.factor, training.lr_schedule.patience) == ("plateau", 0.5, 3)
    rates = []
    for loss in [1.0, 0.9, 0.9, 0.9, 0.9, 0.9]:
        optimizer.step()
        scheduler.step(loss)
        rates.append(optimizer.param_groups[0]["lr"])
    assert rates == [1.0, 1.0, 1.0, 1.0, 1.0, 0.5]  # three epochs allowed, the fourth reduces


def test_cosine_anneals_to_zero_over_the_epochs_and_constant_keeps_the_rate():
    training, optimizer, scheduler = schedule_of("+training.lr_schedule.name=cosine", "training.epochs=4")
    for _ in range(4):
        optimizer.step()  # the order a training epoch steps them in
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)
    assert schedule_of("+training.lr_schedule.name=constant")[2] is None
