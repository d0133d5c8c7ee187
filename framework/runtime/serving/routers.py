"""Routers of the serving app (framework.runtime.serving.router.Router), one per
`rollout.strategy`, between the champion version C and the candidate version K:

* DirectRouter: everything to one version (the champion, or the newest).
* CanaryRouter: `set_weight(w)` sends w% of requests to K; a request carrying the
  recipe's header (`rollout.header.name: value`) always goes to K.
* ShadowRouter: C answers every request; `mirror_percent` of them also run on K in the
  background, and `compare` collects K's agreement with C and its latency delta.
* BanditRouter: Thompson sampling over the arms (C, K) with Beta(successes + 1,
  failures + 1) posteriors on the reward (`success`: answered without a 5xx, from
  `observe`; `feedback`: only what `feedback()` reports); `min_percent` of the traffic
  stays with each arm (a uniform exploration share), and `weights()` is the expected
  allocation: floor + (1 - arms * floor) * P(arm is best).
* BlueGreenRouter: everything to C until `switch()`, then to K; the header routes to K
  (the preview) before the switch.

Every router keeps per-version counters for the analysis (stats.py: requests, errors,
a bounded latency reservoir), in windows the controller starts with `reset()`, and
counts routed vs answered requests so the controller can wait until the app has
reported everything it sent (`pending()`). `finish(version)` ends a rollout: every
later request goes to that version (promote: K, roll back: C).

Randomness comes from a numpy Generator seeded at construction (default 0), so a test
replaying the same calls sees the same routes. The app calls these methods on its
event loop's thread, never concurrently; none blocks (a few microseconds each).
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from framework.runtime.serving.stats import Stats, Uniforms, VersionStats

MC_DRAWS = 1000  # Monte Carlo draws behind BanditRouter.weights() (~0.15 ms, at most once a second)


def _seeded(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed, stream])


class _Counting:
    """Per-version stats windows and the routed/answered counters every router keeps."""

    strategy = ""

    def __init__(self, model: str, versions: tuple[str, ...], seed: int):
        self.model = model
        self.seed = seed
        self.versions = tuple(str(v) for v in versions)
        self.rng = _seeded(seed, 0)
        self._uniform = Uniforms(self.rng)
        self._stats_uniform = Uniforms(_seeded(seed, 1))
        self.routed = 0
        self.answered = 0
        self.final: str | None = None
        self._stats: dict[str, VersionStats] = {}
        self.reset()

    # --- counters ------------------------------------------------------------------
    def reset(self) -> None:
        """Start a new analysis window (counters of every version back to zero)."""
        self._stats = {v: VersionStats(v, self._stats_uniform) for v in self.versions}

    def _stat(self, version: str) -> VersionStats:
        stats = self._stats.get(version)
        if stats is None:
            stats = self._stats[version] = VersionStats(version, self._stats_uniform)
        return stats

    def stats(self, version: str) -> Stats:
        """A snapshot of one version's counters in the current window."""
        stats = self._stats.get(str(version))
        return stats.snapshot() if stats is not None else Stats(str(version))

    def pending(self) -> int:
        """Requests routed (or shadows started) that the app has not reported yet."""
        return self.routed - self.answered

    def finish(self, version: str) -> None:
        """The rollout is decided: every later request goes to `version`, weight 1.0."""
        self.final = str(version)

    # --- Router protocol -----------------------------------------------------------
    def observe(self, model: str, version: str, ok: bool, latency_s: float) -> None:
        self.answered += 1
        self._stat(version).add(ok, latency_s)

    def compare(self, model: str, primary_version: str, shadow_version: str, agree: bool, latency_delta_s: float) -> None:
        pass

    def weights(self, model: str) -> dict[str, float]:
        if model != self.model:
            return {}
        if self.final is not None:
            return {v: (1.0 if v == self.final else 0.0) for v in self.versions}
        return self._weights()

    def _weights(self) -> dict[str, float]:  # pragma: no cover - each router has its own
        raise NotImplementedError


def _forced_version(router, headers: Mapping[str, str]) -> str | None:
    """The version a request must reach whatever the weights: all traffic after the
    decision (`final`), else the candidate when the override header is set."""
    if router.final is not None:
        return router.final
    header = router.header
    if header is not None and headers.get(header[0]) == header[1]:
        return router.candidate
    return None


def _header(header) -> tuple[str, str] | None:
    """(lower-case name, value) of a recipe's HeaderOverride (or a (name, value) pair)."""
    if header is None:
        return None
    name, value = (header.name, header.value) if hasattr(header, "name") else header
    return str(name).lower(), str(value)


class DirectRouter(_Counting):
    """Every request to one version."""

    strategy = "direct"

    def __init__(self, model: str, version: str, *, seed: int = 0):
        super().__init__(model, (str(version),), seed)
        self.version = str(version)

    @classmethod
    def newest(cls, model: str, versions, **kwargs) -> "DirectRouter":
        return cls(model, max((str(v) for v in versions), key=int), **kwargs)

    def route(self, model: str, headers: Mapping[str, str]) -> tuple[str, str | None]:
        self.routed += 1
        return self.final or self.version, None

    def _weights(self) -> dict[str, float]:
        return {self.version: 1.0}


class CanaryRouter(_Counting):
    """`weight` percent of requests to the candidate; the header forces the candidate."""

    strategy = "canary"

    def __init__(self, model: str, champion: str, candidate: str, *, weight: float = 0.0, header=None, seed: int = 0):
        super().__init__(model, (str(champion), str(candidate)), seed)
        self.champion, self.candidate = self.versions
        self.header = _header(header)
        self.weight = 0.0
        self.set_weight(weight)

    def set_weight(self, percent: float) -> None:
        """The candidate's share of traffic, in percent (a canary step)."""
        if not 0.0 <= percent <= 100.0:
            raise ValueError(f"canary weight must be within 0..100 percent, got {percent}")
        self.weight = float(percent)
        self._share = self.weight / 100.0

    def route(self, model: str, headers: Mapping[str, str]) -> tuple[str, str | None]:
        self.routed += 1
        forced = _forced_version(self, headers)
        if forced is not None:
            return forced, None
        return (self.candidate if self._uniform() < self._share else self.champion), None

    def _weights(self) -> dict[str, float]:
        return {self.champion: 1.0 - self._share, self.candidate: self._share}


class ShadowRouter(_Counting):
    """The champion answers; `mirror_percent` of requests also run on the candidate.

    The candidate's counters are its shadow runs: a `compare` is a request it answered
    (agreeing or not), an `observe` of the candidate a failed one. Its latency samples
    are estimates of what a client would have seen from it: the primary's recent
    request latency (an exponential average) plus the shadow's inference-time delta.
    """

    strategy = "shadow"
    EWMA = 0.1

    def __init__(self, model: str, champion: str, candidate: str, *, mirror_percent: float = 100.0, seed: int = 0):
        super().__init__(model, (str(champion), str(candidate)), seed)
        self.champion, self.candidate = self.versions
        if not 0.0 <= mirror_percent <= 100.0:
            raise ValueError(f"mirror_percent must be within 0..100, got {mirror_percent}")
        self.mirror = mirror_percent / 100.0
        self.shadows = 0  # started (the app may drop one when too many are in flight)
        self.shadows_done = 0
        self._primary_latency: float | None = None

    def route(self, model: str, headers: Mapping[str, str]) -> tuple[str, str | None]:
        self.routed += 1
        if self.final is not None:
            return self.final, None
        if self._uniform() < self.mirror:
            self.shadows += 1
            return self.champion, self.candidate
        return self.champion, None

    def observe(self, model: str, version: str, ok: bool, latency_s: float) -> None:
        if version == self.candidate and self.final is None:  # a failed shadow run
            self.shadows_done += 1
            self._stat(version).add(False, latency_s)
            return
        self.answered += 1
        self._stat(version).add(ok, latency_s)
        if ok:
            last = self._primary_latency
            self._primary_latency = latency_s if last is None else last + self.EWMA * (latency_s - last)

    def compare(self, model: str, primary_version: str, shadow_version: str, agree: bool, latency_delta_s: float) -> None:
        self.shadows_done += 1
        stats = self._stat(shadow_version)
        stats.add(True, max(0.0, (self._primary_latency or 0.0) + latency_delta_s))
        stats.add_comparison(agree, latency_delta_s)

    def pending(self) -> int:
        return (self.routed - self.answered) + (self.shadows - self.shadows_done)

    def _weights(self) -> dict[str, float]:
        return {self.champion: 1.0, self.candidate: 0.0}


class BanditRouter(_Counting):
    """Thompson sampling with Beta(successes + 1, failures + 1) per arm, and an
    exploration floor of `min_percent` per arm."""

    strategy = "bandit"

    def __init__(
        self,
        model: str,
        champion: str,
        candidate: str,
        *,
        min_percent: float = 5.0,
        reward: str = "success",
        seed: int = 0,
    ):
        super().__init__(model, (str(champion), str(candidate)), seed)
        self.champion, self.candidate = self.versions
        self.arms = list(self.versions)
        n = len(self.arms)
        if not 0.0 <= min_percent * n <= 100.0:
            raise ValueError(f"min_percent {min_percent} x {n} arms exceeds 100 percent")
        if reward not in ("success", "feedback"):
            raise ValueError(f"unknown bandit reward {reward!r}; use success or feedback")
        self.floor = min_percent / 100.0
        self.explore = self.floor * n
        self.reward = reward
        self.successes = [0.0] * n
        self.failures = [0.0] * n
        self._index = {arm: i for i, arm in enumerate(self.arms)}
        self._mc = _seeded(seed, 2)

    def route(self, model: str, headers: Mapping[str, str]) -> tuple[str, str | None]:
        self.routed += 1
        if self.final is not None:
            return self.final, None
        u = self._uniform()
        if u < self.explore:  # uniform exploration: each arm keeps `floor` of the traffic
            return self.arms[min(int(u / self.explore * len(self.arms)), len(self.arms) - 1)], None
        beta = self.rng.beta  # scalar draws: ~0.7 us each, a vectorised call costs ~12 us
        best, best_draw = 0, -1.0
        for i, (s, f) in enumerate(zip(self.successes, self.failures)):
            draw = beta(s + 1.0, f + 1.0)
            if draw > best_draw:
                best, best_draw = i, draw
        return self.arms[best], None

    def observe(self, model: str, version: str, ok: bool, latency_s: float) -> None:
        super().observe(model, version, ok, latency_s)
        if self.reward == "success":
            self.feedback(version, 1.0 if ok else 0.0)

    def takes_feedback(self, model: str) -> bool:
        """Whether the app's feedback route feeds this router (reward: feedback)."""
        return model == self.model and self.reward == "feedback"

    def feedback(self, version: str, reward: float) -> None:
        """A reward in [0, 1] for one request answered by `version` (reward: feedback)."""
        i = self._index.get(str(version))
        if i is None:
            return
        reward = min(max(float(reward), 0.0), 1.0)
        self.successes[i] += reward
        self.failures[i] += 1.0 - reward

    def prob_best(self, draws: int = MC_DRAWS, *, fresh: bool = False) -> dict[str, float]:
        """P(arm has the highest reward rate) under the posteriors (Monte Carlo). With
        `fresh`, the draws come from a new generator seeded like the router's: equal
        posteriors then give an equal answer, however often weights() ran before (the
        controller's decision)."""
        alpha = np.asarray(self.successes) + 1.0
        beta = np.asarray(self.failures) + 1.0
        rng = _seeded(self.seed, 3) if fresh else self._mc
        samples = rng.beta(alpha, beta, size=(draws, len(self.arms)))
        wins = np.bincount(samples.argmax(axis=1), minlength=len(self.arms)) / draws
        return {arm: float(p) for arm, p in zip(self.arms, wins)}

    def rewards(self) -> dict[str, tuple[float, float]]:
        """(successes, failures) behind each arm's posterior."""
        return {arm: (s, f) for arm, s, f in zip(self.arms, self.successes, self.failures)}

    def _weights(self) -> dict[str, float]:
        best = self.prob_best()
        return {arm: self.floor + (1.0 - self.explore) * p for arm, p in best.items()}


class BlueGreenRouter(_Counting):
    """All traffic to the active version (the champion until `switch()`); the header
    routes to the preview (the candidate)."""

    strategy = "blue_green"

    def __init__(self, model: str, champion: str, candidate: str, *, header=None, seed: int = 0):
        super().__init__(model, (str(champion), str(candidate)), seed)
        self.champion, self.candidate = self.versions
        self.header = _header(header)
        self.active = self.champion

    def switch(self) -> None:
        self.active = self.candidate

    def route(self, model: str, headers: Mapping[str, str]) -> tuple[str, str | None]:
        self.routed += 1
        forced = _forced_version(self, headers)
        if forced is not None:
            return forced, None
        return self.active, None

    def _weights(self) -> dict[str, float]:
        return {v: (1.0 if v == self.active else 0.0) for v in self.versions}


def make_router(rollout, model: str, champion: str, candidate: str, *, seed: int = 0):
    """The router of a recipe's `rollout` section (canary starts at weight 0)."""
    strategy = rollout.strategy
    if strategy == "direct":
        return DirectRouter(model, candidate, seed=seed)
    if strategy == "canary":
        return CanaryRouter(model, champion, candidate, header=rollout.header, seed=seed)
    if strategy == "shadow":
        return ShadowRouter(model, champion, candidate, mirror_percent=rollout.mirror_percent, seed=seed)
    if strategy == "bandit":
        return BanditRouter(model, champion, candidate, min_percent=rollout.min_percent, reward=rollout.reward, seed=seed)
    if strategy == "blue_green":
        return BlueGreenRouter(model, champion, candidate, header=rollout.header, seed=seed)
    raise ValueError(f"unknown rollout strategy {strategy!r}")


__all__ = ["DirectRouter", "CanaryRouter", "ShadowRouter", "BanditRouter", "BlueGreenRouter", "make_router"]
