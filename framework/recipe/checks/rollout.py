"""Rules mainly about `rollout`: the steps of a canary, and what a strategy needs of the
rest of the recipe (live metrics to judge it, Istio to route its traffic, a serving
backend that can route between model versions).
"""

from __future__ import annotations

from collections.abc import Iterator

from framework.recipe.checks.base import Violation, check
from framework.recipe.recipe import Recipe
from framework.recipe.rollout import CanaryRollout
from framework.recipe.serving import RayServeLlmServing


@check
def canary_steps_rise_to_100(r: Recipe) -> Iterator[Violation]:
    if not isinstance(r.rollout, CanaryRollout):
        return
    steps = r.rollout.steps
    for before, after in zip(steps, steps[1:]):
        if after <= before:
            yield Violation(("rollout.steps",), f"rollout.steps must rise strictly: {after} follows {before} in {steps}")
            return
    if steps[-1] != 100:
        yield Violation(("rollout.steps",), f"rollout.steps must end at 100, the full rollout; ends at {steps[-1]} in {steps}")


@check
def analysis_needs_metrics(r: Recipe) -> Iterator[Violation]:
    if r.rollout.strategy != "direct" and not r.monitoring.metrics.enabled:
        yield Violation(
            ("rollout.strategy", "monitoring.metrics.enabled"),
            f"rollout.strategy {r.rollout.strategy} is judged on live metrics: it needs "
            "monitoring.metrics.enabled true (or use strategy direct)",
        )


@check
def traffic_routing_needs_istio(r: Recipe) -> Iterator[Violation]:
    if r.rollout.strategy in ("canary", "shadow", "blue_green", "bandit") and not r.deploy.istio:
        yield Violation(
            ("rollout.strategy", "deploy.istio"),
            f"rollout.strategy {r.rollout.strategy} routes traffic with Istio: set deploy.istio true or use strategy direct",
        )


@check
def ray_serve_llm_rolls_out_directly(r: Recipe) -> Iterator[Violation]:
    if isinstance(r.serving, RayServeLlmServing) and r.rollout.strategy != "direct":
        yield Violation(
            ("rollout.strategy", "serving.backend"),
            f"rollout.strategy {r.rollout.strategy} routes traffic between model versions, which serving.backend "
            "ray_serve_llm cannot (KubeRay owns the pods and Ray Serve LLM serves one model): use strategy direct",
        )
