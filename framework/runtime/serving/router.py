"""The rollout router hook of the serving app, and the default router.

For an infer request that names no version (`POST /v2/models/{name}/infer`), the app asks
the router which version answers and which, if any, shadows it; a request naming
`/versions/{v}` bypasses the router. Rollout strategies (canary, shadow, bandit,
blue/green) implement `Router`; the app only calls it:

    primary, shadow = router.route(model, headers)     # before inference
    router.observe(model, version, ok, latency_s)      # after each answer (and failed shadow)
    router.compare(model, primary, shadow, agree, latency_delta_s)  # after each shadow run
    router.weights(model)                              # when /metrics is scraped

Rules the app keeps, so a router can rely on them:
* Every method is called on the event loop's thread, never concurrently: no locking is
  needed, and none may block (no I/O; keep them to microseconds).
* `headers` maps lower-case header names to their (latin-1 decoded) values; a repeated
  header keeps its last value.
* `observe` follows every routed request once it has been answered (after the response
  was sent): ok is False for a server-side failure (5xx), latency_s is the time from
  the request's arrival to its answer. Requests refused as malformed (4xx) are decided
  before routing and never reach the router.
* A shadow inference runs in the background with the same inputs: it never delays or
  fails the primary answer (when shadows back up, new ones are dropped). When it
  succeeds the app calls `compare` (agree: the same top class in every row for outputs
  wider than one column, else every value within 1e-3 absolute + 1e-3 relative;
  latency_delta_s: shadow minus primary inference time); when it fails, `observe(model,
  shadow, False, latency_s)`.
* `weights` returns {version: share of traffic in [0, 1]}; the app exports each as
  `mlops_rollout_weight{model, version}` in percent. Versions missing from the dict are
  removed from the gauge.
* A version returned by `route` must be loaded; otherwise the request fails with 500.
* Optional, for routers that learn from the caller's rewards (the bandit with
  `reward: feedback`): `takes_feedback(model)` says whether `POST
  /v2/models/{model}[/versions/{v}]/feedback` is accepted, and `feedback(version,
  reward)` receives each reward in [0, 1]. Other routers answer that route with 409.
"""

from __future__ import annotations

from typing import Mapping, Protocol, Sequence, runtime_checkable


@runtime_checkable
class Router(Protocol):
    def route(self, model: str, headers: Mapping[str, str]) -> tuple[str, str | None]:
        """(primary version, shadow version or None) for one request."""

    def observe(self, model: str, version: str, ok: bool, latency_s: float) -> None:
        """The outcome of one answered request (or failed shadow)."""

    def compare(self, model: str, primary_version: str, shadow_version: str, agree: bool, latency_delta_s: float) -> None:
        """The outcome of one shadow inference against its primary."""

    def weights(self, model: str) -> dict[str, float]:
        """Share of traffic each version gets, in [0, 1]."""


class LatestVersionRouter:
    """Everything to the newest loaded version: no shadow, weight 1.0."""

    def __init__(self, versions: Mapping[str, Sequence[str]]):
        self.latest = {model: max(vs, key=int) for model, vs in versions.items() if vs}

    def route(self, model: str, headers: Mapping[str, str]) -> tuple[str, str | None]:
        return self.latest[model], None

    def observe(self, model: str, version: str, ok: bool, latency_s: float) -> None:
        pass

    def compare(self, model: str, primary_version: str, shadow_version: str, agree: bool, latency_delta_s: float) -> None:
        pass

    def weights(self, model: str) -> dict[str, float]:
        return {self.latest[model]: 1.0} if model in self.latest else {}


__all__ = ["Router", "LatestVersionRouter"]
