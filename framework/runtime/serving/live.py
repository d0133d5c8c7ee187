"""Which versions a long-running server serves, and how it routes requests that name
no version: `mlops serve` and the Ray Serve replicas, from the registry's aliases and
the rollout record (contracts/rollout_record.py).

* A rollout in progress (the candidate is neither the champion nor rejected, and its
  rollout did not end inconclusive: apply was stopped mid-rollout, or a blue/green
  preview waits for `mlops rollout promote`): the recipe's router between champion and
  candidate, a canary at its recorded weight (its first step when none was recorded),
  so serving again carries on where it stood.
* Otherwise everything goes to the champion: also after a bandit that ended
  inconclusive, which keeps alias `candidate` for a decision by hand.
* No champion, or its version not loaded: the newest loaded version.

A rollout record that does not validate stops the plan with an MlopsError naming the
file (contracts.rollout_record.load_record), rather than serving a guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from framework.contracts.triton import model_name
from framework.contracts.registry import ALIAS_CANDIDATE, ALIAS_CHAMPION, ALIAS_REJECTED
from framework.contracts.rollout_record import load_record, record_path
from framework.runtime.tracking import aliases


@dataclass(frozen=True)
class LivePlan:
    model: str
    champion: str | None
    candidate: str | None  # set only while a rollout is in progress
    strategy: str
    weight: float  # the candidate's share, percent (canary)

    @property
    def versions(self) -> list[str]:
        return [v for v in (self.champion, self.candidate) if v is not None]

    def describe(self) -> str:
        if self.champion is None:
            return "no champion in the registry: the newest version answers"
        if self.candidate is None:
            return f"champion version {self.champion} answers"
        how = {
            "canary": f"canary at {self.weight:g}% for version {self.candidate}",
            "shadow": f"version {self.candidate} shadows it",
            "bandit": f"bandit between it and version {self.candidate}",
            "blue_green": f"version {self.candidate} previewed by header",
        }.get(self.strategy, f"{self.strategy} with version {self.candidate}")
        return f"champion version {self.champion} answers, rollout in progress: {how}"


def live_plan(recipe, state_dir: Path) -> LivePlan:
    from framework.runtime.tracking import tracking_uri

    found = aliases(recipe.registered_model, uri=tracking_uri(recipe, state_dir))
    champion, candidate = found[ALIAS_CHAMPION], found[ALIAS_CANDIDATE]
    strategy = recipe.rollout.strategy
    in_progress = (
        strategy != "direct" and champion is not None and candidate is not None
        and candidate != champion and candidate != found[ALIAS_REJECTED]
    )
    record = load_record(record_path(state_dir, recipe.name, recipe.environment)) if in_progress else None
    about = record if record is not None and record.candidate == candidate else None  # this candidate's rollout
    if about is not None and about.status == "inconclusive":
        in_progress = False  # the rollout ended: the champion stays until a person decides
    weight = 0.0
    if in_progress and strategy == "canary":
        weight = about.weight if about is not None else float(recipe.rollout.steps[0])
    return LivePlan(model_name(recipe), champion, candidate if in_progress else None, strategy, weight)


def live_router(recipe, plan: LivePlan, *, seed: int = 0) -> Callable[[Any], Any]:
    """A router factory for the serving app (it gets the loaded Repository); the app is
    built with the plan's versions (rollout/local.rollout_repository holds them)."""

    def router(repository):
        from framework.runtime.serving.routers import CanaryRouter, DirectRouter, make_router
        from framework.runtime.serving.router import LatestVersionRouter

        loaded = repository.versions().get(plan.model, [])
        if plan.candidate is not None and plan.champion in loaded and plan.candidate in loaded:
            made = make_router(recipe.rollout, plan.model, plan.champion, plan.candidate, seed=seed)
            if isinstance(made, CanaryRouter):
                made.set_weight(plan.weight)
            return made
        if plan.champion is not None and plan.champion in loaded:
            return DirectRouter(plan.model, plan.champion)
        return LatestVersionRouter(repository.versions())

    return router


def routing(plan: LivePlan, *, switched: bool = False, final: str | None = None) -> dict[str, Any]:
    """A plan as the Ray Serve deployment's user_config carries it (routing_router)."""
    spec: dict[str, Any] = {"champion": plan.champion, "candidate": plan.candidate, "strategy": plan.strategy,
                            "weight": plan.weight}
    if switched:
        spec["switched"] = True
    if final is not None:
        spec["final"] = str(final)
    return spec


def routing_router(recipe, spec: dict[str, Any]) -> Callable[[Any], Any]:
    """The router factory of a `routing` spec: the plan it describes, blue/green switched
    and the decision (`final`: every request to that version) applied."""
    plan = LivePlan(model_name(recipe), spec.get("champion"), spec.get("candidate"),
                    spec.get("strategy") or recipe.rollout.strategy, float(spec.get("weight") or 0.0))
    plain = live_router(recipe, plan)

    def router(repository):
        made = plain(repository)
        if spec.get("switched") and hasattr(made, "switch"):
            made.switch()
        if spec.get("final") is not None and hasattr(made, "finish"):
            made.finish(str(spec["final"]))
        return made

    return router


__all__ = ["LivePlan", "live_plan", "live_router", "routing", "routing_router"]
