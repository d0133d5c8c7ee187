"""The local rollout driver: walks `rollout.strategy` between the champion and the
candidate, then promotes or rolls back, recording everything in the state file.

Locally a rollout advances by request counts, not by the recipe's durations
(`rollout.interval`, `duration`, `preview_duration` are for clusters, where Argo
Rollouts and Istio wait them out): each step sends synthetic traffic until the
candidate has served `rollout.analysis.min_requests` in that step's window, then
judges it (analysis.py). So a local rollout takes seconds. Per strategy:

* direct: the candidate becomes the champion, no traffic.
* canary: for each of `steps` (percent): weight the candidate, send traffic until it
  has min_requests, analyse; the first failing step rolls back; the last passing step
  promotes.
* shadow: mirror `mirror_percent` of the traffic until min_requests shadow runs came
  back; the analysis adds `min_agreement`.
* bandit: Thompson sampling until each arm has served min_requests; a failing analysis
  rolls back, else the posterior decides (analysis.bandit_verdict): P(candidate beats
  champion) >= `promote_probability` promotes, <= 1 - it rolls back, in between the
  rollout ends inconclusive: no alias moves, the champion keeps all traffic.
* blue_green: preview traffic (the recipe's header) to the candidate until
  min_requests, analyse; passing switches all traffic and promotes when
  `auto_promote`, else the rollout waits (status paused) for `mlops rollout promote`.

A step that cannot collect min_requests within its budget (`budget_factor` times the
requests its share should need) is inconclusive and rolls back. Promote: MLflow alias
`champion` -> candidate and the router sends everything to it; roll back: alias
`rejected` -> candidate, champion unchanged, the router sends everything to the
champion; a bandit's inconclusive end moves no alias (the candidate keeps `candidate`,
so `mlops rollout promote|rollback` can still decide) and sends everything to the
champion. The record: `.mlops/rollouts/<recipe>/<env>.json` (state.py).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from framework.runtime.rollout import state as st
from framework.runtime.rollout.analysis import Verdict, analyse, bandit_verdict
from framework.contracts.rollout_record import RolloutRecord, StepVerdict, WindowStats, new_record
from framework.runtime.serving.stats import Stats

BANDIT_DRAWS = 200_000  # Monte Carlo draws behind the decision: a standard error under 0.12 points

Traffic = Callable[..., Any]  # traffic(n, headers=None): send n requests, return once answered


@dataclass
class RolloutResult:
    recipe: str
    env: str
    strategy: str
    champion: str | None  # before the rollout
    candidate: str | None
    decision: str  # promoted | rolled_back | inconclusive (bandit: the champion stays) | paused | unchanged
    reasons: list[str] = field(default_factory=list)
    verdicts: list[dict] = field(default_factory=list)
    requests: int = 0
    state_path: Path | None = None
    where: str = "embedded server"  # what served the rollout's traffic

    @property
    def champion_after(self) -> str | None:
        return self.candidate if self.decision == "promoted" else self.champion


class Controller:
    """Drives one rollout of `candidate` against `champion` through `router`, sending
    traffic with `traffic(n, headers=None)` (blocking until answered)."""

    def __init__(
        self,
        recipe,
        *,
        uri: str,
        router,
        traffic: Traffic,
        champion: str,
        candidate: str,
        state_path: Path,
        model: str | None = None,
        chunk_max: int = 500,
        budget_factor: float = 3.0,
        settle_s: float = 5.0,
        on_event: Callable[[str], None] | None = None,
    ):
        self.recipe = recipe
        self.rollout = recipe.rollout
        self.analysis = recipe.rollout.analysis
        self.uri = uri
        self.router = router
        self.traffic = traffic
        self.champion = str(champion)
        self.candidate = str(candidate)
        self.state_path = Path(state_path)
        self.model = model or recipe.name
        self.chunk_max = chunk_max
        self.budget_factor = budget_factor
        self.settle_s = settle_s
        self.on_event = on_event or (lambda line: None)
        self.sent = 0
        self.state: RolloutRecord = new_record(recipe, champion=self.champion, candidate=self.candidate, model=self.model)

    # --- the walk ------------------------------------------------------------------
    def run(self) -> RolloutResult:
        st.write_state(self.state_path, self.state)
        strategy = self.rollout.strategy
        walk = getattr(self, f"_{strategy}")
        return walk()

    def _direct(self) -> RolloutResult:
        return self._promote(["rollout direct: the candidate replaces the champion without analysis"])

    def _canary(self) -> RolloutResult:
        steps = self.state.steps
        for number, weight in enumerate(steps, 1):
            self.router.set_weight(weight)
            self.state.step, self.state.weight = number, float(weight)
            st.write_state(self.state_path, self.state)
            verdict, stats = self._window(self.candidate, weight / 100.0)
            label = f"step {number}/{len(steps)} ({weight}%)"
            self._record(verdict, stats, label, step=number, weight=float(weight))
            if not verdict.passed:
                return self._rollback([f"canary {label}: {r}" for r in verdict.reasons])
        return self._promote([f"canary: all {len(steps)} steps passed"])

    def _shadow(self) -> RolloutResult:
        self.state.step, self.state.weight = 1, 0.0
        mirror = self.rollout.mirror_percent / 100.0
        verdict, stats = self._window(self.candidate, mirror, min_agreement=self.rollout.min_agreement)
        self._record(verdict, stats, f"shadow ({self.rollout.mirror_percent:g}% mirrored)", step=1, weight=0.0)
        if not verdict.passed:
            return self._rollback([f"shadow: {r}" for r in verdict.reasons])
        return self._promote([f"shadow: {r}" for r in verdict.reasons])

    def _bandit(self) -> RolloutResult:
        self.state.step = 1
        floor = max(self.rollout.min_percent / 100.0, 0.01)
        verdict, stats = self._window(self.candidate, floor, both_arms=True)
        weights = self.router.weights(self.model)
        self.state.weight = round(weights.get(self.candidate, 0.0) * 100.0, 2)
        health = verdict
        if health.passed:  # a failing (or starved) analysis rolls back before the posterior is asked
            p_better = self.router.prob_best(BANDIT_DRAWS, fresh=True)[self.candidate]
            call = bandit_verdict(p_better, self.rollout.promote_probability, self.champion, self.candidate,
                                  self.router.rewards())
            # the posterior's line first: it decides; the passed checks follow unless it rolls back
            verdict = Verdict(call.passed, call.reasons + (health.reasons if call.passed is not False else []))
        self._record(verdict, stats, f"bandit (candidate {self.state.weight:g}% of traffic)", step=1,
                     weight=self.state.weight)
        reasons = [f"bandit: {r}" for r in verdict.reasons]
        if verdict.passed:
            return self._promote(reasons)
        if verdict.passed is None and health.passed:
            return self._keep_champion(reasons)
        return self._rollback(reasons)

    def _blue_green(self) -> RolloutResult:
        self.state.step, self.state.weight = 1, 0.0
        header = self.rollout.header
        verdict, stats = self._window(self.candidate, 1.0, headers={header.name: header.value})
        self._record(verdict, stats, "blue/green preview", step=1, weight=0.0)
        if not verdict.passed:
            return self._rollback([f"blue_green preview: {r}" for r in verdict.reasons])
        if not self.rollout.auto_promote:
            reasons = [f"blue_green preview: {r}" for r in verdict.reasons]
            reasons.append("auto_promote is false: run `mlops rollout promote` to switch")
            return self._finish("paused", None, reasons)
        self.router.switch()
        self.state.weight = 100.0
        return self._promote([f"blue_green preview: {r}" for r in verdict.reasons])

    # --- one analysis window ---------------------------------------------------------
    def _window(
        self,
        version: str,
        share: float,
        *,
        min_agreement: float | None = None,
        headers: Mapping[str, str] | None = None,
        both_arms: bool = False,
    ) -> tuple[Verdict, Stats]:
        """Send traffic in a fresh window until `version` has min_requests (with
        both_arms: every version), then analyse it."""
        self._settle()
        self.router.reset()
        needed = self.analysis.min_requests
        share = max(share, 1e-3)
        budget = math.ceil(needed / share * self.budget_factor) + 20
        sent = 0
        while True:
            stats = self.router.stats(version)
            served = stats.requests
            if both_arms:
                served = min(self.router.stats(v).requests for v in (self.champion, self.candidate))
            if served >= needed:
                return analyse(stats, self.analysis, min_agreement), stats
            if sent >= budget:
                reason = (f"inconclusive: {served} of {needed} requests (analysis.min_requests) "
                          f"after {sent} requests sent")
                return Verdict(None, [reason]), stats
            n = min(max(math.ceil((needed - served) / share), 10), self.chunk_max, budget - sent)
            self.traffic(n, headers)
            sent += n
            self.sent += n
            self.state.requests = self.sent
            self._settle()

    def _settle(self) -> None:
        """Wait (briefly) until the app has reported every request it routed: `observe`
        comes after the answer, shadows finish in the background."""
        pending = getattr(self.router, "pending", None)
        if pending is None:
            return
        deadline = time.monotonic() + self.settle_s
        while pending() > 0 and time.monotonic() < deadline:
            time.sleep(0.002)

    def _record(self, verdict: Verdict, stats: Stats, label: str, *, step: int, weight: float) -> None:
        entry = StepVerdict(
            step=step,
            weight=float(weight),
            passed=verdict.passed,
            reasons=list(verdict.reasons),
            candidate=WindowStats.of(stats),
            champion=WindowStats.of(self.router.stats(self.champion)),
            requests=self.sent,
            at=st.now(),
        )
        self.state.verdicts.append(entry)
        st.write_state(self.state_path, self.state)
        self.on_event(f"rollout {label}: {st.verdict_text(verdict.passed, verdict.reasons)}")

    # --- decisions ---------------------------------------------------------------------
    def _promote(self, reasons: list[str]) -> RolloutResult:
        st.promote_version(self.recipe.registered_model, self.candidate, uri=self.uri)
        if hasattr(self.router, "set_weight"):
            self.router.set_weight(100.0)
        self.router.finish(self.candidate)
        self.state.weight = 100.0
        return self._finish("promoted", "promote", reasons)

    def _rollback(self, reasons: list[str]) -> RolloutResult:
        st.reject_version(self.recipe.registered_model, self.candidate, uri=self.uri)
        if hasattr(self.router, "set_weight"):
            self.router.set_weight(0.0)
        self.router.finish(self.champion)
        self.state.weight = 0.0
        return self._finish("rolled_back", "rollback", reasons)

    def _keep_champion(self, reasons: list[str]) -> RolloutResult:
        """Inconclusive evidence: no alias moves. `candidate` stays on the version, so
        `mlops rollout promote|rollback` can still settle it by hand (clearing it would
        leave both commands nothing to act on), and the next apply moves it anyway."""
        st.mark_inconclusive(self.recipe.registered_model, self.candidate, uri=self.uri)
        self.router.finish(self.champion)
        self.state.weight = 0.0
        return self._finish("inconclusive", "inconclusive", reasons)

    def _finish(self, status: str, decision: str | None, reasons: list[str]) -> RolloutResult:
        state = self.state
        state.status, state.decision, state.reasons, state.requests = status, decision, list(reasons), self.sent
        state.decided_by = "controller" if decision else None
        state.finished_at = st.now() if decision else None
        st.write_state(self.state_path, self.state)
        verb = {"promoted": f"promoted version {self.candidate} to champion",
                "rolled_back": f"rolled back version {self.candidate}; champion stays version {self.champion}",
                "inconclusive": f"inconclusive for version {self.candidate}; champion stays version {self.champion}",
                "paused": f"version {self.candidate} passed its preview; waiting for `mlops rollout promote`"}[status]
        self.on_event(f"rollout {self.rollout.strategy}: {verb}")
        return RolloutResult(
            self.recipe.name, self.recipe.environment, self.rollout.strategy, self.champion, self.candidate,
            status, list(reasons), [v.model_dump(mode="json") for v in self.state.verdicts], self.sent, self.state_path,
        )


def summary(result: RolloutResult) -> str:
    """Lines for the end of `mlops apply`."""
    head = {
        "promoted": f"promoted version {result.candidate} to champion",
        "rolled_back": f"rolled back version {result.candidate} (alias rejected); champion stays version {result.champion}",
        "inconclusive": (f"inconclusive: champion stays version {result.champion}; version {result.candidate} keeps "
                         f"alias candidate (decide by hand: `mlops rollout promote|rollback {result.recipe}`)"),
        "paused": f"version {result.candidate} passed its preview; run `mlops rollout promote {result.recipe}` to switch",
        "unchanged": f"nothing to roll out: version {result.candidate} is already the champion",
    }[result.decision]
    lines = [f"{result.recipe} ({result.env}): rollout {result.strategy}: {head}"]
    if result.requests:
        lines.append(f"  {result.requests} synthetic requests on the {result.where}")
    lines += [f"  {reason}" for reason in result.reasons]
    if result.state_path is not None:
        from framework.project import display_path

        lines.append(f"  record: {display_path(result.state_path)}")
    return "\n".join(lines)


def serve_hint(recipe) -> str:
    """The last line of a local apply: where to send requests."""
    from framework.contracts.triton import model_name

    env = "" if recipe.environment == "dev" else f" --env {recipe.environment}"
    return (f"serve it: mlops serve {recipe.name}{env}, then POST "
            f"http://127.0.0.1:{recipe.serving.port}/v2/models/{model_name(recipe)}/infer (KServe v2)")


__all__ = ["Controller", "RolloutResult", "summary", "serve_hint"]
