"""Synthetic traffic for local rollouts: KServe v2 infer requests built from validation
rows, sent to a running embedded server (framework.runtime.serving.host.EmbeddedServer) by a
few threads, each on its own keep-alive connection (stdlib http.client: no client
dependency at run time).

With `labels` and a `reward` function (a bandit rolling out on `reward: feedback`), each
answer is scored against the rows' labels and the score is posted back to the server's
feedback route, as a client reporting outcomes would."""

from __future__ import annotations

import http.client
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np


@dataclass
class TrafficReport:
    sent: int = 0
    ok: int = 0
    failed: int = 0  # 5xx or no answer
    rejected: int = 0  # 4xx: the request was wrong (never reaches the router)
    versions: Counter = field(default_factory=Counter)  # model_version of each 200 answer
    latencies_s: list[float] = field(default_factory=list)
    rewards: dict[str, list[float]] = field(default_factory=dict)  # version -> rewards posted

    def merge(self, other: "TrafficReport") -> None:
        self.sent += other.sent
        self.ok += other.ok
        self.failed += other.failed
        self.rejected += other.rejected
        self.versions.update(other.versions)
        self.latencies_s.extend(other.latencies_s)
        for version, values in other.rewards.items():
            self.rewards.setdefault(version, []).extend(values)


Reward = Callable[[np.ndarray, np.ndarray], float]
Observer = Callable[[str | None, int, float, bytes, dict, float | None], None]


def reward_for(task: str, labels: np.ndarray) -> Reward:
    """Score of one answer in [0, 1]: a classifier's share of rows whose top class is the
    label; a regressor's 1 - |error| / std(labels), floored at 0."""
    if task == "classification":
        return lambda outputs, rows: float(np.mean(outputs.reshape(len(rows), -1).argmax(axis=1) == rows))
    scale = float(np.std(labels)) or 1.0
    return lambda outputs, rows: float(np.mean(np.clip(1.0 - np.abs(outputs.reshape(len(rows)) - rows) / scale, 0.0, 1.0)))


def infer_body(inputs: dict[str, np.ndarray]) -> bytes:
    """A KServe v2 JSON body of request tensors ({column: [rows, 1]})."""
    import orjson

    from framework.runtime.serving.protocol import request_inputs

    return orjson.dumps({"inputs": request_inputs(inputs)})


def send_infer_requests(
    url: str,
    model: str,
    inputs: dict[str, np.ndarray],
    n: int,
    *,
    concurrency: int = 4,
    headers: Mapping[str, str] | None = None,
    rows_per_request: int = 1,
    seed: int = 0,
    timeout: float = 30.0,
    labels: np.ndarray | None = None,
    reward: Reward | None = None,
    observe: Observer | None = None,
) -> TrafficReport:
    """Send `n` infer requests to `http://<url>/v2/models/<model>/infer` (url: host:port,
    as EmbeddedServer.url gives it), each `rows_per_request` rows drawn at random from
    `inputs` (request tensors of raw rows, {column: [rows, 1]}: FeaturePipeline.
    raw_inputs), from `concurrency` threads; returns once every request has been
    answered (and, with `labels` and `reward`, each 200 answer's reward posted to
    `/v2/models/<model>/versions/<v>/feedback`). `observe(version, status, latency_s,
    body, answer, reward)` sees every answer (version: the server's mlops-model-version
    header, None with no answer; reward: the score posted, if any), from the sending
    threads."""
    from framework.runtime.serving.protocol import take_rows

    total = len(next(iter(inputs.values()))) if inputs else 0
    if total == 0:
        raise ValueError("inputs must hold at least one row")
    report = TrafficReport()
    if n <= 0:
        return report
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, total, size=(n, rows_per_request))
    bodies = [infer_body(take_rows(inputs, rows)) for rows in picks]
    host, _, port = url.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    path = f"/v2/models/{model}/infer"
    base_headers = {"Content-Type": "application/json", **dict(headers or {})}
    workers = max(1, min(concurrency, n))
    scores = labels is not None and reward is not None
    parts = [TrafficReport() for _ in range(workers)]

    def work(index: int) -> None:
        part = parts[index]
        connection = http.client.HTTPConnection(host, int(port), timeout=timeout)
        try:
            for n_request in range(index, n, workers):
                body = bodies[n_request]
                part.sent += 1
                began = time.perf_counter()
                try:
                    connection.request("POST", path, body=body, headers=base_headers)
                    response = connection.getresponse()
                    payload = response.read()
                    status = response.status
                except (OSError, http.client.HTTPException):
                    connection.close()  # reconnects on the next request
                    part.failed += 1
                    if observe is not None:
                        observe(None, 0, time.perf_counter() - began, body, {}, None)
                    continue
                latency = time.perf_counter() - began
                part.latencies_s.append(latency)
                answer = _answer(payload) if status == 200 else {}
                score = None
                if status == 200:
                    part.ok += 1
                    version = str(answer.get("model_version", ""))
                    part.versions[version] += 1
                    if scores:
                        score = reward(_outputs(answer), labels[picks[n_request]])
                        part.rewards.setdefault(version, []).append(score)
                if observe is not None:
                    observe(response.getheader("mlops-model-version"), status, latency, body, answer, score)
                if score is not None:
                    _post_feedback(connection, f"/v2/models/{model}/versions/{version}/feedback", score, base_headers)
                if 400 <= status < 500:
                    part.rejected += 1
                elif status != 200:
                    part.failed += 1
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(i,), daemon=True, name=f"traffic-{i}") for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for part in parts:
        report.merge(part)
    return report


def _answer(payload: bytes) -> dict:
    import orjson

    try:
        answer = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return {}
    return answer if isinstance(answer, dict) else {}


def _outputs(answer: dict) -> np.ndarray:
    outputs = answer.get("outputs") or [{}]
    return np.asarray(outputs[0].get("data", []), dtype=np.float64)


def _post_feedback(connection: http.client.HTTPConnection, path: str, score: float, headers: Mapping[str, str]) -> None:
    import orjson

    try:
        connection.request("POST", path, body=orjson.dumps({"reward": score}), headers=dict(headers))
        connection.getresponse().read()
    except (OSError, http.client.HTTPException):
        connection.close()  # a lost reward only slows the bandit down


class SyntheticTraffic:
    """`traffic(n, headers=None)` for the controller: n requests to one served model,
    rows from `inputs` (request tensors); each call draws new rows (its own seed)."""

    def __init__(self, url: str, model: str, inputs: dict[str, np.ndarray], *, concurrency: int = 4, seed: int = 0, **options):
        self.url, self.model, self.inputs = url, model, inputs
        self.concurrency = concurrency
        self.seed = seed
        self.options = options
        self.calls = 0
        self.report = TrafficReport()
        self._lock = threading.Lock()

    def __call__(self, n: int, headers: Mapping[str, str] | None = None) -> TrafficReport:
        with self._lock:
            self.calls += 1
            seed = self.seed + self.calls
        done = send_infer_requests(
            self.url, self.model, self.inputs, n, concurrency=self.concurrency, headers=headers, seed=seed, **self.options
        )
        with self._lock:
            self.report.merge(done)
        return done


__all__ = ["TrafficReport", "send_infer_requests", "SyntheticTraffic", "infer_body", "reward_for"]
