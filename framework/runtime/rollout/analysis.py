"""The rollout analysis: does the candidate's traffic so far pass `rollout.analysis`?

`analyse(stats, analysis)` gives a Verdict: passed None while the candidate has served
fewer than `min_requests` (nothing is judged on too little traffic), else False with
the failed checks as reasons, or True with the checks it passed. Checks: error rate
(5xx share) <= max_error_rate, p99 latency <= max_latency_p99_ms, and for shadow
rollouts the share of mirrored requests where both models agree >= min_agreement.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from framework.runtime.rollout.stats import Stats


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


__all__ = ["Verdict", "analyse"]
