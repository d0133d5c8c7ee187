"""Under load: 64 concurrent clients, thousands of requests, zero 5xx, every answer its own;
dynamic batching really batches, and adds no latency to a lone request."""

from __future__ import annotations

import asyncio
import re
import time

import aiohttp
import numpy as np
import orjson
import pytest

from framework import api
from framework.runtime.serving.host import EmbeddedServer, build_app
from framework.runtime.serving.protocol import request_inputs, take_rows
from tests.conftest import REPO
from tests.serving.conftest import inputs, ort_outputs

CLIENTS = 64
REQUESTS = 3200
BAD_EVERY = 20  # one request in 20 is malformed: refused with 400 while the rest are served


def payload(tensors: dict[str, np.ndarray]) -> bytes:
    """A KServe v2 JSON request of request tensors: named columns, FP32 and BYTES."""
    return orjson.dumps({"inputs": request_inputs(tensors)})


def load_inputs(rows: int, seed: int) -> dict[str, np.ndarray]:
    """Churn rows as request tensors, with nulls and unseen categories among them."""
    x = inputs(rows, seed)
    x["total_charges"][::7] = np.nan
    x["contract"][::11] = "weekly"
    x["payment_method"][::13] = ""
    return x


def rows_of(tensors: dict[str, np.ndarray]) -> int:
    return len(next(iter(tensors.values())))


async def hammer(base: str, tensors: dict[str, np.ndarray]) -> tuple[list[int], dict[int, dict], float]:
    """One request per row from CLIENTS clients; every BAD_EVERY-th is malformed.
    Returns the statuses, {row: {"probabilities": [2], "label": str}} and the seconds
    (for a print, never an assert: how fast is bench/serve.py's)."""
    count = rows_of(tensors)
    bodies = [b'{"inputs": [' if i % BAD_EVERY == 0 else payload(take_rows(tensors, slice(i, i + 1))) for i in range(count)]
    statuses: list[int] = [0] * count
    answers: dict[int, dict] = {}
    counter = iter(range(count))

    async def client(session: aiohttp.ClientSession) -> None:
        for i in counter:
            async with session.post(f"{base}/v2/models/churn/infer", data=bodies[i]) as response:
                statuses[i] = response.status
                content = await response.read()
                if response.status == 200:
                    outputs = {o["name"]: o["data"] for o in orjson.loads(content)["outputs"]}
                    answers[i] = {"probabilities": np.asarray(outputs["probabilities"], dtype=np.float32),
                                  "label": outputs["label"][0]}

    connector = aiohttp.TCPConnector(limit=CLIENTS)
    timeout = aiohttp.ClientTimeout(total=60)
    began = time.perf_counter()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(client(session) for _ in range(CLIENTS)))
    return statuses, answers, time.perf_counter() - began


@pytest.fixture(params=["inline", "threads"])
def fresh(request, tmp_path, model_repo, churn_recipe, monkeypatch):
    """Both places a batch can run: on the event loop (tiny models) or in worker threads."""
    monkeypatch.setenv("MLOPS_SERVE_INLINE", "1" if request.param == "inline" else "0")
    app = build_app(churn_recipe, model_repo, tmp_path, log_sample_rate=0.1)
    assert all(b.inline == (request.param == "inline") for b in app.batchers.values())
    with EmbeddedServer(app) as server:
        yield app, f"http://{server.url}"


def test_64_clients_thousands_of_requests_zero_5xx_and_batches_form(fresh, model_repo):
    app, base = fresh
    tensors = load_inputs(REQUESTS, seed=11)
    expected = ort_outputs(model_repo, "2", tensors)
    statuses, answers, _ = asyncio.run(hammer(base, tensors))
    bad = {i for i in range(REQUESTS) if i % BAD_EVERY == 0}
    assert [s for s in statuses if s >= 500] == []
    assert {i for i, s in enumerate(statuses) if s == 400} == bad
    assert set(answers) == set(range(REQUESTS)) - bad
    for i, answer in answers.items():  # each request got its own rows back out of the batch
        np.testing.assert_allclose(answer["probabilities"], expected["probabilities"][i], rtol=1e-5, atol=1e-6)
        assert answer["label"] == expected["label"][i, 0]
    assert {a["label"] for a in answers.values()} == {"0", "1"}

    text = asyncio.run(_get(f"{base}/metrics"))
    count = float(re.search(r"^mlops_batch_size_count (\S+)$", text, re.M).group(1))
    total = float(re.search(r"^mlops_batch_size_sum (\S+)$", text, re.M).group(1))
    singles = float(re.search(r'^mlops_batch_size_bucket\{le="1.0"\} (\S+)$', text, re.M).group(1))
    assert total == len(answers)  # every served row ran in exactly one batch
    assert count < total and singles < count  # batches of more than one row formed
    assert re.search(r"^mlops_inflight_requests 0.0$", text, re.M)
    served = float(re.search(r'^mlops_requests_total\{model="churn",status="200",version="2"\} (\S+)$', text, re.M).group(1))
    assert served == len(answers)


async def _get(url: str) -> str:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return await response.text()


@pytest.mark.parametrize("inline", ["1", "0"], ids=["inline", "threads"])
def test_batching_adds_no_latency_to_a_lone_request(tmp_path, model_repo, monkeypatch, inline):
    """With a 200 ms max_queue_delay and nothing else running, no request waits for it:
    each runs at once, in a batch of its own (the latencies themselves: bench/serve.py)."""
    monkeypatch.setenv("MLOPS_SERVE_INLINE", inline)
    recipe = api.load_recipe("churn", overrides=["serving.dynamic_batching.max_queue_delay_us=200000"], project=REPO).recipe
    app = build_app(recipe, model_repo, tmp_path / "state", log_sample_rate=0)
    assert app.models["churn"].config.dynamic_batching.max_queue_delay_microseconds == 200_000
    x = inputs(1)

    async def sequential(base: str) -> str:
        async with aiohttp.ClientSession() as session:
            for _ in range(30):
                async with session.post(f"{base}/v2/models/churn/infer", data=payload(x)) as response:
                    assert response.status == 200
                    await response.read()
        return await _get(f"{base}/metrics")

    with EmbeddedServer(app) as server:
        text = asyncio.run(sequential(f"http://{server.url}"))
    assert [b.holds for b in app.batchers.values()] == [0] * len(app.batchers)  # no timer waited out the delay
    assert re.search(r"^mlops_batch_size_count 30.0$", text, re.M) and re.search(r"^mlops_batch_size_sum 30.0$", text, re.M)
