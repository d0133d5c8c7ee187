"""Triton's own request series, kept by the serving app where it stands in for the
recipe's Triton (serving.backend triton: `mlops serve`, the local apply and rollouts).
The generated alerts, dashboard and canary analysis of such a recipe query Triton's
names (targets/metrics.py), so without these the local server answers none of them.

As Triton 2.51 exposes them when started with `--metrics-config=summary_latencies=true`
(targets/metrics.TRITON_ARGS), names, types, labels and units alike:
* `nv_inference_request_success{model,version}`: requests the model answered.
* `nv_inference_request_failure{model,reason,version}`: requests that failed in the
  server; every reason exists at 0 from load, as in Triton. A failure once a version was
  chosen (500: the model failed) is BACKEND, a client that went away (499) CANCELED.
* `nv_inference_request_summary_us{model,version,quantile}` (with `_sum`, `_count`):
  the latency of answered requests in microseconds; the quantiles cover the last
  MAX_AGE_S (prometheus-cpp's default window), NaN while it is empty.
Requests turned away before a version's model runs (the 4xx: bad body, unknown model or
version) count in none of them: Triton does not count those either. `model` is the
model's name in the repository, as Triton labels it.
"""

from __future__ import annotations

import math
import time
from collections import deque

from framework.contracts.metrics import TRITON_FAILURE, TRITON_LATENCY_SUMMARY, TRITON_SUCCESS

REASONS = ("REJECTED", "CANCELED", "BACKEND", "OTHER")
QUANTILES = (0.5, 0.9, 0.95, 0.99, 0.999)
MAX_AGE_S = 60.0
MAX_SAMPLES = 8192  # per version: under heavy load the window holds the latest ones only
HELP = {
    TRITON_SUCCESS: "Number of successful inference requests, all batch sizes",
    TRITON_FAILURE: "Number of failed inference requests, all batch sizes",
    TRITON_LATENCY_SUMMARY: "Summary of inference request duration in microseconds (includes cached requests)",
}


def _labels(pairs: tuple[tuple[str, str], ...]) -> str:
    def escape(value: str) -> str:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    return "{" + ",".join(f'{k}="{escape(v)}"' for k, v in pairs) + "}"


def _number(value: float) -> str:
    return "NaN" if math.isnan(value) else str(value)


class TritonSeries:
    """Counts per (model, version), turned into Triton's exposition when scraped. `names`
    maps the model label the app reports (the registered model) to the repository name."""

    def __init__(self, names: dict[str, str]):
        self.names = names
        self.success: dict[tuple[str, str], int] = {}
        self.failure: dict[tuple[str, str, str], int] = {}
        self.latency_sum: dict[tuple[str, str], int] = {}
        self.window: dict[tuple[str, str], deque] = {}

    def loaded(self, model: str, versions: list[str]) -> None:
        """Every series of these versions at 0, as Triton creates them at load."""
        for version in versions:
            self._key(self.names.get(model, model), version)

    def _key(self, name: str, version: str) -> tuple[str, str]:
        key = (name, version)
        if key not in self.success:
            self.success[key] = 0
            self.latency_sum[key] = 0
            self.window[key] = deque(maxlen=MAX_SAMPLES)
            for reason in REASONS:
                self.failure[(name, version, reason)] = 0
        return key

    def add(self, model: str, version: str, status: int, seconds: float) -> None:
        if not version or (status != 200 and status < 499):
            return  # turned away before the model ran
        key = self._key(self.names.get(model, model), version)
        if status == 200:
            us = round(seconds * 1e6)  # whole microseconds, as Triton counts them
            self.success[key] += 1
            self.latency_sum[key] += us
            self.window[key].append((time.monotonic(), us))
        else:
            reason = (*key, "CANCELED" if status == 499 else "BACKEND")
            self.failure[reason] += 1

    def _quantiles(self, key: tuple[str, str]) -> list[float]:
        window = self.window[key]
        oldest = time.monotonic() - MAX_AGE_S
        while window and window[0][0] < oldest:
            window.popleft()
        values = sorted(us for _, us in window)
        if not values:
            return [math.nan] * len(QUANTILES)
        return [values[max(0, math.ceil(q * len(values)) - 1)] for q in QUANTILES]

    def exposition(self) -> bytes:
        lines = []
        for name, kind in ((TRITON_SUCCESS, "counter"), (TRITON_FAILURE, "counter"), (TRITON_LATENCY_SUMMARY, "summary")):
            lines += [f"# HELP {name} {HELP[name]}", f"# TYPE {name} {kind}"]
            if name == TRITON_SUCCESS:
                for (model, version), count in list(self.success.items()):
                    lines.append(f"{name}{_labels((('model', model), ('version', version)))} {count}")
            elif name == TRITON_FAILURE:
                for (model, version, reason), count in list(self.failure.items()):
                    lines.append(f"{name}{_labels((('model', model), ('reason', reason), ('version', version)))} {count}")
            else:
                for key in list(self.success):
                    scope = (("model", key[0]), ("version", key[1]))
                    lines.append(f"{name}_count{_labels(scope)} {self.success[key]}")
                    lines.append(f"{name}_sum{_labels(scope)} {_number(self.latency_sum[key])}")
                    for q, value in zip(QUANTILES, self._quantiles(key)):
                        lines.append(f"{name}{_labels((*scope, ('quantile', repr(q))))} {_number(value)}")
        return ("\n".join(lines) + "\n").encode()


__all__ = ["TritonSeries", "REASONS", "QUANTILES", "MAX_AGE_S"]
