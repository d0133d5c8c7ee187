"""`mlops smoke RECIPE --env E --url URL`: requests against a deployed endpoint, the
pipeline's check that staging really serves the model it registered.

Tabular recipes: KServe v2 infer requests (`POST <url>/v2/models/<model>/infer`) built
from validation rows of `data.source` (encoded by the registered version's feature
pipeline, as a client of this model sends them). Every answer must be a 200 with the
model's outputs at the right shape, and must agree (within `onnx_parity_atol`, 1e-4 if
unset) with the offline predictions of the version that answered it (its
`model_version`), scored here from the registry on the same rows.
RAG recipes: `POST <url>/query` with the labelled questions; every answer must be a 200
with a non-empty answer and its sources.
Both: the p99 latency must stay under `monitoring.alerts.max_latency_p99_ms`, the
threshold the alert fires at.
"""

from __future__ import annotations

import http.client
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

from framework.errors import MlopsError, Problem

DEFAULT_REQUESTS = 50
ROWS_PER_REQUEST = 4
DEFAULT_ATOL = 1e-4
TIMEOUT_S = 30.0
MAX_LISTED = 5  # failures shown one by one; the rest are counted


@dataclass
class SmokeReport:
    recipe: str
    env: str
    url: str
    sent: int = 0
    ok: int = 0
    failures: list[str] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    threshold_ms: float = 0.0
    versions: Counter = field(default_factory=Counter)  # version -> answers
    max_difference: float | None = None  # largest |served - offline| (tabular)

    @property
    def p99_ms(self) -> float:
        return float(np.percentile(self.latencies_ms, 99)) if self.latencies_ms else float("nan")

    @property
    def passed(self) -> bool:
        return self.sent > 0 and not self.failures and self.p99_ms <= self.threshold_ms

    def problems(self) -> list[str]:
        out = list(self.failures[:MAX_LISTED])
        if len(self.failures) > MAX_LISTED:
            out.append(f"... and {len(self.failures) - MAX_LISTED} more failed requests")
        if self.latencies_ms and self.p99_ms > self.threshold_ms:
            out.append(f"p99 latency {self.p99_ms:.1f} ms is over monitoring.alerts.max_latency_p99_ms "
                       f"({self.threshold_ms:g} ms)")
        return out

    def summary(self) -> str:
        versions = ", ".join(f"version {v}: {n}" for v, n in sorted(self.versions.items())) or "none"
        agreement = "" if self.max_difference is None else f", max |served - offline| {self.max_difference:.2g}"
        return (f"{self.recipe} ({self.env}) at {self.url}: {self.ok}/{self.sent} requests ok, p99 {self.p99_ms:.1f} ms "
                f"(alert at {self.threshold_ms:g} ms), answered by {versions}{agreement}")

    def exchange(self, endpoint: "Endpoint", path: str, body: object, label: str) -> object | None:
        """POST one request, counting it and its latency; the answer of a 200, else None
        with the failure recorded under `label`."""
        self.sent += 1
        try:
            status, answer, ms = endpoint.call("POST", path, body)
        except ConnectionError as exc:
            self.failures.append(f"{label}: no answer ({exc})")
            return None
        self.latencies_ms.append(ms)
        if status != 200:
            self.failures.append(f"{label}: HTTP {status}: {str(answer)[:200]}")
            return None
        return answer

    def to_markdown(self) -> str:
        verdict = "passed" if self.passed else "**FAILED**"
        lines = [f"### Smoke test: {verdict}", "", self.summary()]
        lines += [f"- {problem}" for problem in self.problems()]
        return "\n".join(lines)


class Endpoint:
    """One keep-alive HTTP(S) connection to the base URL; JSON in, (status, JSON, ms) out."""

    def __init__(self, url: str):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise MlopsError([Problem(None, "--url", f"'{url}' is not an http(s) URL: give the endpoint's base URL, "
                                      "e.g. https://churn.staging.example.com")])
        self.url = url.rstrip("/")
        self.prefix = parts.path.rstrip("/")
        connection = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        self.connection = connection(parts.hostname, parts.port, timeout=TIMEOUT_S)

    def call(self, method: str, path: str, body: object | None = None) -> tuple[int, object, float]:
        payload = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if payload is not None else {}
        began = time.perf_counter()
        for attempt in (1, 2):
            try:
                self.connection.request(method, self.prefix + path, body=payload, headers=headers)
                response = self.connection.getresponse()
                raw = response.read()
                break
            except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected) as exc:
                # A kept-alive connection the server closed while idle (uvicorn: after 5 s):
                # what any HTTP client does is send once more on a new connection.
                self.connection.close()
                if attempt == 2:
                    raise ConnectionError(f"{type(exc).__name__}: {exc}") from None
                began = time.perf_counter()
            except (OSError, http.client.HTTPException) as exc:
                self.connection.close()
                raise ConnectionError(f"{type(exc).__name__}: {exc}") from None
        elapsed = (time.perf_counter() - began) * 1000
        try:
            return response.status, json.loads(raw) if raw else None, elapsed
        except ValueError:
            return response.status, raw[:200].decode("utf-8", "replace"), elapsed

    def reachable(self, path: str) -> None:
        """One GET first: an unreachable URL is one clear error, not N failed requests."""
        try:
            self.call("GET", path)
        except ConnectionError as exc:
            raise MlopsError([Problem(None, "--url", f"cannot reach {self.url}: {exc}")]) from None

    def close(self) -> None:
        self.connection.close()


def smoke(recipe, root: Path, state_dir: Path, url: str, requests: int = DEFAULT_REQUESTS,
          version: str | None = None) -> SmokeReport:
    if not url:
        raise MlopsError([Problem(None, "--url", "no URL given: set ci.environments[].endpoint in the recipe, the "
                                  "repository variable the pipeline names, or pass --url")])
    if requests < 1:
        raise MlopsError([Problem(None, "--requests", f"must be at least 1, got {requests}")])
    report = SmokeReport(recipe.name, recipe.environment, url.rstrip("/"),
                         threshold_ms=recipe.monitoring.alerts.max_latency_p99_ms)
    endpoint = Endpoint(url)
    try:
        if recipe.model.kind == "tabular":
            _smoke_tabular(recipe, root, state_dir, endpoint, requests, version, report)
        else:
            _smoke_rag(recipe, root, endpoint, requests, report)
    finally:
        endpoint.close()
    return report


# --- tabular: KServe v2 ---------------------------------------------------------------
def _smoke_tabular(recipe, root: Path, state_dir: Path, endpoint: Endpoint, requests: int, version: str | None,
                   report: SmokeReport) -> None:
    from framework.contracts.registry import ALIAS_CANDIDATE, ALIAS_CHAMPION
    from framework.runtime.registered import open_version
    from framework.runtime.serving.protocol import request_inputs, take_rows
    from framework.runtime.serving.registry_source import registry_versions
    from framework.runtime.pipeline.evaluate import validation_rows

    endpoint.reachable("/v2/health/ready")
    if version is None:  # the version the pipeline deployed: candidate, else champion
        found = registry_versions(recipe, state_dir)
        version = found.get(ALIAS_CANDIDATE) or found.get(ALIAS_CHAMPION)
        if version is None:
            raise MlopsError([Problem(None, "--version", f"no version of '{recipe.registered_model}' has alias "
                                      "candidate or champion: pass --version N")])
    deployed = open_version(recipe, state_dir, version)
    table = validation_rows(recipe, root)
    inputs = deployed.pipeline.raw_inputs(table)
    config = deployed.config
    model, output = config.name, config.output[0]
    atol = recipe.evaluation.gates.onnx_parity_atol or DEFAULT_ATOL
    per_request = min(ROWS_PER_REQUEST, config.max_batch_size, len(table)) if config.max_batch_size > 0 else 1
    rng = np.random.default_rng(0)
    opened = {deployed.version: deployed}
    worst = 0.0
    for n in range(requests):
        rows = take_rows(inputs, rng.integers(0, len(table), size=per_request))
        body = {"inputs": request_inputs(rows)}
        answer = report.exchange(endpoint, f"/v2/models/{model}/infer", body, f"request {n + 1}")
        if answer is None:
            continue
        served, problem = _served_outputs(answer, output, per_request)
        if problem:
            report.failures.append(f"request {n + 1}: {problem}")
            continue
        answered_by = str(answer.get("model_version", deployed.version))
        report.versions[answered_by] += 1
        if answered_by not in opened:
            opened[answered_by] = open_version(recipe, state_dir, answered_by)
        offline = opened[answered_by].outputs(rows)
        difference = float(np.max(np.abs(served - offline))) if served.size else 0.0
        worst = max(worst, difference)
        if difference > atol:
            report.failures.append(f"request {n + 1}: version {answered_by} answered {served.reshape(-1)[:4].tolist()}, "
                                   f"its registered model gives {offline.reshape(-1)[:4].tolist()} offline "
                                   f"(|difference| {difference:.3g} > {atol:g})")
            continue
        report.ok += 1
    report.max_difference = worst


def _served_outputs(answer: object, output, rows: int) -> tuple[np.ndarray, str]:
    """The named output as [rows, width], or a problem saying what is wrong with it."""
    if not isinstance(answer, dict) or not isinstance(answer.get("outputs"), list):
        return np.zeros(0), f"the answer has no outputs list: {str(answer)[:200]}"
    entry = next((o for o in answer["outputs"] if isinstance(o, dict) and o.get("name") == output.name), None)
    if entry is None:
        names = [o.get("name") for o in answer["outputs"] if isinstance(o, dict)]
        return np.zeros(0), f"no output '{output.name}' in the answer (outputs: {names})"
    width = int(np.prod([d for d in output.dims if d > 0])) if output.dims else 1
    expected = [rows, width]
    shape = entry.get("shape")
    data = entry.get("data")
    if list(shape or []) != expected:
        return np.zeros(0), f"output '{output.name}' has shape {shape}, expected {expected}"
    if not isinstance(data, list) or len(data) != rows * width:
        return np.zeros(0), f"output '{output.name}' carries {len(data) if isinstance(data, list) else 'no'} values, expected {rows * width}"
    return np.asarray(data, dtype=np.float64).reshape(rows, width), ""


# --- RAG: /query ---------------------------------------------------------------------
def _smoke_rag(recipe, root: Path, endpoint: Endpoint, requests: int, report: SmokeReport) -> None:
    from framework.runtime.rag.evaluate import load_questions, questions_path

    endpoint.reachable("/health")
    questions = load_questions(questions_path(recipe, root))
    if not questions:
        raise MlopsError([Problem(None, "evaluation.retrieval.questions", "has no questions to ask")])
    for n in range(requests):
        question = questions[n % len(questions)].question
        answer = report.exchange(endpoint, "/query", {"question": question}, f"question {n + 1}")
        if answer is None:
            continue
        if not isinstance(answer, dict) or not str(answer.get("answer") or "").strip():
            report.failures.append(f"question {n + 1}: no answer text in {str(answer)[:200]}")
        elif not answer.get("sources"):
            report.failures.append(f"question {n + 1}: the answer names no sources")
        else:
            report.ok += 1
            report.versions[str(answer.get("model") or "rag")] += 1


__all__ = ["SmokeReport", "smoke", "DEFAULT_REQUESTS"]
