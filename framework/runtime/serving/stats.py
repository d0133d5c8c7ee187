"""Per-version counters a router keeps for the rollout analysis: requests, errors (5xx),
and latencies in a bounded reservoir (Vitter's algorithm R, `RESERVOIR` samples), so a
window of any length costs the same memory and p99 is exact up to RESERVOIR requests.

Updates run on the serving event loop (microseconds, no locks); `snapshot()` may be
called from another thread (the controller): it copies plain Python values under the
GIL, so at worst it misses the update in flight.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

RESERVOIR = 4096
UNIFORM_BLOCK = 4096


class Uniforms:
    """Uniform [0, 1) draws from a seeded numpy Generator, fetched a block at a time
    (one scalar draw costs ~0.5 us in numpy, a list index ~30 ns)."""

    __slots__ = ("rng", "block", "buf", "i")

    def __init__(self, rng: np.random.Generator, block: int = UNIFORM_BLOCK):
        self.rng = rng
        self.block = block
        self.buf: list[float] = []
        self.i = 0

    def __call__(self) -> float:
        i = self.i
        if i >= len(self.buf):
            self.buf = self.rng.random(self.block).tolist()
            i = 0
        self.i = i + 1
        return self.buf[i]


@dataclass(frozen=True)
class Stats:
    """What the analysis reads about one version over one window."""

    version: str
    requests: int = 0
    errors: int = 0
    p50_ms: float | None = None
    p99_ms: float | None = None
    compared: int = 0  # shadow: mirrored requests both models answered
    agreed: int = 0
    delta_p50_ms: float | None = None  # shadow: median of (candidate - primary) inference time

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def agreement(self) -> float | None:
        return self.agreed / self.compared if self.compared else None

    def to_dict(self) -> dict:
        out = asdict(self)
        out["error_rate"] = round(self.error_rate, 6)
        out["agreement"] = None if self.agreement is None else round(self.agreement, 6)
        for key in ("p50_ms", "p99_ms", "delta_p50_ms"):
            if out[key] is not None:
                out[key] = round(out[key], 3)
        return out


class Reservoir:
    """At most `size` samples, each seen value kept with equal probability."""

    __slots__ = ("size", "seen", "samples", "uniform")

    def __init__(self, uniform: Uniforms, size: int = RESERVOIR):
        self.size = size
        self.seen = 0
        self.samples: list[float] = []
        self.uniform = uniform

    def add(self, value: float) -> None:
        self.seen += 1
        if len(self.samples) < self.size:
            self.samples.append(value)
        else:
            j = int(self.uniform() * self.seen)
            if j < self.size:
                self.samples[j] = value

    def quantile(self, q: float) -> float | None:
        samples = list(self.samples)  # a copy: the loop may be appending
        if not samples:
            return None
        return float(np.quantile(np.asarray(samples, dtype=np.float64), q))


class VersionStats:
    __slots__ = ("version", "requests", "errors", "latency", "compared", "agreed", "delta")

    def __init__(self, version: str, uniform: Uniforms, size: int = RESERVOIR):
        self.version = version
        self.requests = 0
        self.errors = 0
        self.latency = Reservoir(uniform, size)
        self.compared = 0
        self.agreed = 0
        self.delta = Reservoir(uniform, size)

    def add(self, ok: bool, latency_s: float) -> None:
        self.requests += 1
        if not ok:
            self.errors += 1
        self.latency.add(latency_s)

    def add_comparison(self, agree: bool, delta_s: float) -> None:
        self.compared += 1
        if agree:
            self.agreed += 1
        self.delta.add(delta_s)

    def snapshot(self) -> Stats:
        def ms(value: float | None) -> float | None:
            return None if value is None else value * 1000.0

        return Stats(
            version=self.version,
            requests=self.requests,
            errors=self.errors,
            p50_ms=ms(self.latency.quantile(0.5)),
            p99_ms=ms(self.latency.quantile(0.99)),
            compared=self.compared,
            agreed=self.agreed,
            delta_p50_ms=ms(self.delta.quantile(0.5)),
        )


def agree(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    """Two models agree: the same text (labels), the same top class per row (outputs
    wider than one column), else every value within 1e-3 absolute + 1e-3 relative."""
    for name, x in a.items():
        y = b.get(name)
        if y is None or x.shape != y.shape:
            return False
        if x.dtype == object or y.dtype == object:  # labels: the same text
            if not np.array_equal(x, y):
                return False
        elif x.ndim >= 2 and x.shape[-1] > 1:
            if not np.array_equal(x.argmax(axis=-1), y.argmax(axis=-1)):
                return False
        elif not np.allclose(x, y, rtol=1e-3, atol=1e-3):
            return False
    return True


__all__ = ["Stats", "VersionStats", "Reservoir", "Uniforms", "RESERVOIR", "agree"]
