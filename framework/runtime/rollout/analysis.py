"""The rollout analysis: does the candidate's traffic so far pass `rollout.analysis`?

`analyse(stats, analysis)` gives a Verdict: passed None while the candidate has served
fewer than `min_requests` (nothing is judged on too little traffic), else False with
the failed checks as reasons, or True with the checks it passed. Checks: error rate
(5xx share) <= max_error_rate, p99 latency <= max_latency_p99_ms, and for shadow
rollouts the share of mirrored requests where both models agree >= min_agreement.

`bandit_verdict` is a bandit's decision once its analysis passed: the posterior
P(candidate beats champion) against `rollout.promote_probability`, with None as a
decision of its own (inconclusive: the champion stays).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from framework.runtime.serving.stats import Stats


@dataclass(frozen=True)
class Verdict:
    passed: bool | None  # None: not enough requests yet
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"passed": self.passed, "reasons": list(self.reasons)}


def _pct(fraction: float) -> str:
    return f"{fraction * 100:.2f}%"


def analyse(stats: Stats, analysis, min_agreement: float | None = None) -> Verdict:
    """The verdict on the candidate's `stats` under `analysis` (rollout.analysis);
    `min_agreement` (rollout.min_agreement of a shadow rollout) adds the agreement check."""
    if stats.requests < analysis.min_requests:
        return Verdict(None, [f"not enough requests: {stats.requests} of {analysis.min_requests} (analysis.min_requests)"])
    failed: list[str] = []
    passed: list[str] = []
    rate = stats.error_rate
    limit = analysis.max_error_rate
    line = f"error rate {_pct(rate)} ({stats.errors} of {stats.requests})"
    if rate > limit:
        failed.append(f"{line} > {_pct(limit)} (analysis.max_error_rate)")
    else:
        passed.append(f"{line} <= {_pct(limit)}")
    p99, limit_ms = stats.p99_ms, analysis.max_latency_p99_ms
    if p99 is not None:
        if p99 > limit_ms:
            failed.append(f"p99 latency {p99:.1f} ms > {limit_ms:g} ms (analysis.max_latency_p99_ms)")
        else:
            passed.append(f"p99 latency {p99:.1f} ms <= {limit_ms:g} ms")
    if min_agreement is not None:
        agreement = stats.agreement
        if agreement is None:
            failed.append("agreement unknown: no mirrored request was answered by both models (min_agreement)")
        elif agreement < min_agreement:
            failed.append(
                f"agreement {_pct(agreement)} ({stats.agreed} of {stats.compared}) < {_pct(min_agreement)} (min_agreement)"
            )
        else:
            passed.append(f"agreement {_pct(agreement)} ({stats.agreed} of {stats.compared}) >= {_pct(min_agreement)}")
    return Verdict(False, failed) if failed else Verdict(True, passed)


def _probability(p: float, *thresholds: float) -> str:
    """p in percent, one decimal, more where one decimal would print a threshold it is not."""
    for digits in range(1, 5):
        text = f"{p * 100:.{digits}f}"
        if all(abs(p - t) < 1e-9 or text != f"{t * 100:.{digits}f}" for t in thresholds):
            break
    return f"{text}%"


def _threshold(t: float) -> str:
    text = f"{t * 100:.4f}".rstrip("0")
    return f"{text}0%" if text.endswith(".") else f"{text}%"


def bandit_verdict(
    p_better: float,
    promote_probability: float,
    champion: str,
    candidate: str,
    rewards: dict[str, tuple[float, float]] | None = None,
) -> Verdict:
    """A bandit's decision from `p_better` = P(candidate's reward rate > champion's) under
    the Beta posteriors: True (promote) when p_better >= promote_probability, False (roll
    back) when 1 - p_better >= it, None (inconclusive: the champion stays) in between.

    `rewards` ({version: (successes, failures)}, the counts behind the posteriors): when
    every reward on both arms was the same (reward: success and no request failed),
    p_better is a function of the traffic split alone, which the bandit chose itself
    (Beta(n + 1, 1) against Beta(m + 1, 1) gives (n + 1) / (n + m + 2)): inconclusive."""
    t = promote_probability
    name = f"P(version {candidate} beats version {champion})"
    shown = f"{name} = {_probability(p_better, t, 1.0 - t)}"
    if rewards is not None:
        counts = {v: rewards.get(v, (0.0, 0.0)) for v in (champion, candidate)}
        served = {v: s + f for v, (s, f) in counts.items()}
        if not any(served.values()):
            return Verdict(None, ["inconclusive: no reward reached the bandit (reward: feedback counts only what the "
                                  "feedback route receives); the champion stays"])
        for value, index in ((1, 1), (0, 0)):  # all successes (index 1: no failure), or all failures
            if all(c[index] == 0 for c in counts.values()):
                return Verdict(None, [
                    f"inconclusive: every request on both versions got reward {value} ({served[champion]:g} on "
                    f"version {champion}, {served[candidate]:g} on version {candidate}), so {shown} reflects only "
                    f"how the bandit split the traffic; the champion stays"
                ])
    if p_better >= t:
        return Verdict(True, [f"{shown} >= {_threshold(t)} (rollout.promote_probability)"])
    if 1.0 - p_better >= t:
        return Verdict(False, [f"{shown} <= {_threshold(1.0 - t)} (1 - rollout.promote_probability)"])
    return Verdict(None, [f"inconclusive: {shown}, needs >= {_threshold(t)} to promote or <= {_threshold(1.0 - t)} "
                          f"to roll back; the champion stays"])


__all__ = ["Verdict", "analyse", "bandit_verdict"]
