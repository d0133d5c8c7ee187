"""The Ray Serve host: `framework.runtime.serving.ray_host:app` (the generated serve_config's import
path) on an embedded Ray in the generated RayService's mode (contracts/ray.py SERVE_ENV),
answering tritonclient like the embedded host, holding up under
load, and publishing the app's metrics both on its own /metrics and through Ray's
metrics exporter (with the `ray_` prefix the generated queries read).

One Ray (and one Serve application) for the whole module: starting it takes ~20 s."""

from __future__ import annotations

import asyncio
import re
import socket
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import numpy as np
import orjson
import pytest
import tritonclient.http as triton
import yaml
from prometheus_client.parser import text_string_to_metric_families

from framework.contracts import metrics as contract
from framework.contracts.ray import SERVE_DEPLOYMENT, SERVE_ENV
from framework.runtime.serving.protocol import take_rows
from framework.targets import metrics as promql
from framework.targets.ray import SERVE_IMPORT_PATH
from tests.conftest import REPO
from tests.serving.conftest import inputs, ort_outputs, text, triton_inputs
from tests.serving.test_load import BAD_EVERY, REQUESTS, hammer, load_inputs, payload

pytestmark = pytest.mark.slow

EXPORT_DEADLINE_S = 60  # Ray's metrics agent publishes what replicas recorded every ~second (set below)
EXPORT_INTERVAL_MS = 1000  # Ray's default, 10 s, would make the test wait for it


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RayServe:
    url: str  # host:port of the serve port (HAProxy), as tritonclient wants it
    metrics_port: int  # Ray's metrics exporter (what Prometheus scrapes on every Ray pod)
    repo: Path

    @property
    def base(self) -> str:
        return f"http://{self.url}"

    @property
    def exporter(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"


@pytest.fixture(scope="module")
def ray_serve(tmp_path_factory, model_repo) -> Iterator[RayServe]:
    """Ray (2 CPUs, metrics exported on a known port every second) in the generated
    RayService's mode (contracts/ray.py SERVE_ENV: HAProxy on the serve port, forwarding to
    the replica's own HTTP server) on 127.0.0.1, and the `churn` application (versions 1
    and 2 of model_repo) ready."""
    import ray
    from ray import serve

    from framework.runtime.serving.ray_host import app as build

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAY_USAGE_STATS_ENABLED", "0")
        mp.setenv("RAY_AUTH_MODE", "disabled")
        for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
            mp.delenv(name, raising=False)
        mp.setenv("NO_PROXY", "127.0.0.1,localhost")
        for name, setting in SERVE_ENV.items():  # what the generated RayService's pods run with
            mp.setenv(name, setting)
        port, metrics_port = free_port(), free_port()
        ray.init(
            address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
            _metrics_export_port=metrics_port,
            _system_config={"metrics_report_interval_ms": EXPORT_INTERVAL_MS},
        )
        try:
            serve.start(http_options={"host": "127.0.0.1", "port": port})
            application = build({
                "recipe": str(REPO / "generated" / "churn" / "dev" / "recipe.resolved.yaml"),
                "model_repository": str(model_repo),
                "state_dir": str(tmp_path_factory.mktemp("ray_serve_state")),
            })
            serve.run(application, name="churn", route_prefix="/", blocking=False)
            with triton.InferenceServerClient(f"127.0.0.1:{port}") as client:
                deadline = time.monotonic() + 120
                while True:
                    try:
                        if client.is_model_ready("churn"):
                            break
                    except Exception:  # the proxy answers before the replica is up
                        pass
                    assert time.monotonic() < deadline, "Ray Serve did not become ready"
                    time.sleep(0.5)
            yield RayServe(f"127.0.0.1:{port}", metrics_port, model_repo)
        finally:
            serve.shutdown()
            ray.shutdown()


# --- Prometheus text ---------------------------------------------------------------------
def scrape(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Sample name -> [(labels, value)] of one Prometheus text page."""
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def value(samples: dict, name: str, **labels: str) -> float | None:
    """The sum over the series of `name` that carry `labels` (Ray adds its own labels,
    WorkerId among them: one series per replica); None when there is none."""
    found = [v for series, v in samples.get(name, []) if all(series.get(k) == w for k, w in labels.items())]
    return sum(found) if found else None


def buckets(samples: dict, name: str, **labels: str) -> dict[float, float]:
    """le -> count of a histogram's `<name>_bucket` series carrying `labels`."""
    les = {series["le"] for series, _ in samples.get(f"{name}_bucket", []) if all(series.get(k) == w for k, w in labels.items())}
    return {float(le): value(samples, f"{name}_bucket", le=le, **labels) for le in les}


# --- tests ---------------------------------------------------------------------------------
def test_generated_serve_config_names_this_builder():
    config = yaml.safe_load((REPO / "tests" / "golden" / "churn-ray-serve" / "ray" / "serve_config.yaml").read_text())
    (application,) = config["applications"]
    assert application["import_path"] == SERVE_IMPORT_PATH == "framework.runtime.serving.ray_host:app"
    assert [d["name"] for d in application["deployments"]] == [SERVE_DEPLOYMENT]
    assert set(application["args"]) == {"recipe"}


def test_ray_serve_answers_like_onnxruntime(ray_serve):
    from ray import serve

    model_repo = ray_serve.repo
    x = inputs(4, seed=5)
    x["contract"][0, 0] = "weekly"  # unseen: no category
    expected = ort_outputs(model_repo, "2", x)
    with triton.InferenceServerClient(ray_serve.url) as client:
        for binary in (True, False):
            requested = [triton.InferRequestedOutput(name, binary_data=binary) for name in ("probabilities", "label")]
            result = client.infer("churn", triton_inputs(x, binary), outputs=requested)
            np.testing.assert_allclose(result.as_numpy("probabilities"), expected["probabilities"], rtol=1e-6)
            assert text(result.as_numpy("label")).tolist() == expected["label"].tolist()
        result = client.infer("churn", triton_inputs(x), model_version="1")
        np.testing.assert_allclose(result.as_numpy("probabilities"), ort_outputs(model_repo, "1", x)["probabilities"], rtol=1e-6)
        assert text(result.as_numpy("label")).tolist() == ort_outputs(model_repo, "1", x)["label"].tolist()
        metadata = client.get_model_metadata("churn")
        assert metadata["versions"] == ["1", "2"] and metadata["parameters"] == {"classes": ["0", "1"]}
        assert [(t["name"], t["datatype"]) for t in metadata["inputs"]][-2:] == [("contract", "BYTES"), ("payment_method", "BYTES")]
    # curl's row-oriented form through the proxy
    row = {"tenure_months": 5, "monthly_charges": 70.0, "total_charges": None, "contract": "weekly", "payment_method": "card"}
    request = urllib.request.Request(f"{ray_serve.base}/v2/models/churn/infer", data=orjson.dumps([row]))
    with urllib.request.urlopen(request, timeout=10) as response:
        outputs = {o["name"]: o["data"] for o in orjson.loads(response.read())["outputs"]}
    assert len(outputs["probabilities"]) == 2 and outputs["label"][0] in ("0", "1")
    status = serve.status().applications["churn"]
    assert list(status.deployments) == [SERVE_DEPLOYMENT]


def test_64_clients_thousands_of_requests_through_the_proxy_zero_5xx(ray_serve):
    """tests/serving/test_load.py's load (64 clients, one request in 20 malformed) through
    the serve port (HAProxy, as the RayService runs it) and a replica: every well-formed request gets its own answer, every
    malformed one a 400, and nothing fails on the server's side."""
    tensors = load_inputs(REQUESTS, seed=17)
    expected = ort_outputs(ray_serve.repo, "2", tensors)
    before = scrape(f"{ray_serve.base}/metrics")

    statuses, answers, seconds = asyncio.run(hammer(ray_serve.base, tensors))

    bad = {i for i in range(REQUESTS) if i % BAD_EVERY == 0}
    assert [s for s in statuses if s >= 500] == []
    assert {i for i, s in enumerate(statuses) if s == 400} == bad
    assert set(answers) == set(range(REQUESTS)) - bad
    for i, answer in answers.items():  # each request got its own rows back out of the batch
        np.testing.assert_allclose(answer["probabilities"], expected["probabilities"][i], rtol=1e-5, atol=1e-6)
        assert answer["label"] == expected["label"][i, 0]

    # ... and the server keeps serving (the malformed requests broke nothing)
    one = urllib.request.Request(f"{ray_serve.base}/v2/models/churn/infer", data=payload(take_rows(tensors, slice(1, 2))))
    with urllib.request.urlopen(one, timeout=10) as response:
        assert response.status == 200
    with urllib.request.urlopen(f"{ray_serve.base}/v2/health/ready", timeout=10) as response:
        assert response.status == 200

    # the app counted what the clients saw (one replica: the proxy's /metrics is all of it)
    after = scrape(f"{ray_serve.base}/metrics")

    def delta(**labels: str) -> float:
        return (value(after, contract.REQUESTS.name, **labels) or 0) - (value(before, contract.REQUESTS.name, **labels) or 0)

    assert delta(model="churn", version="2", status="200") == len(answers) + 1
    assert delta(model="churn", status="400") == len(bad)
    assert [s for s, _ in after[contract.REQUESTS.name] if s["status"].startswith("5")] == []
    assert value(after, contract.INFLIGHT.name) == 0
    print(f"{REQUESTS} requests through Ray Serve in {seconds:.1f} s ({REQUESTS / seconds:.0f}/s)")


def test_metrics_on_the_app_and_through_rays_exporter(ray_serve):
    """The app's /metrics (through the proxy) counts the requests sent; Ray's exporter
    publishes the same measurements as `ray_` + the contract's names, with the model and
    version labels the generated PromQL selects on (framework/targets/metrics.py)."""
    app_url = f"{ray_serve.base}/metrics"
    before = scrape(app_url)
    good, malformed = 40, 3

    async def send() -> list[int]:
        x = inputs(good, seed=23)
        bodies = [payload(take_rows(x, slice(i, i + 1))) for i in range(good)] + [b'{"inputs": ['] * malformed
        async with aiohttp.ClientSession() as session:

            async def post(body: bytes) -> int:
                async with session.post(f"{ray_serve.base}/v2/models/churn/infer", data=body) as response:
                    await response.read()
                    return response.status

            return await asyncio.gather(*(post(b) for b in bodies))

    statuses = asyncio.run(send())
    assert sorted(statuses) == [200] * good + [400] * malformed

    # the app's own series, under the contract's names
    app = scrape(app_url)
    requests, duration, weight = contract.REQUESTS.name, contract.REQUEST_DURATION.name, contract.ROLLOUT_WEIGHT.name
    assert requests == "mlops_requests_total"  # what `ray_` + name in the queries below reads
    served = value(app, requests, model="churn", version="2", status="200")
    refused = value(app, requests, model="churn", status="400")
    assert served - (value(before, requests, model="churn", version="2", status="200") or 0) == good
    assert refused - (value(before, requests, model="churn", status="400") or 0) == malformed
    assert value(app, f"{duration}_count", model="churn", version="2") == served
    assert value(app, weight, model="churn", version="2") == 100.0
    for spec in contract.APP_METRICS:
        assert all(name in app for name in spec.series), spec.name

    # the same measurements through Ray's exporter: what Prometheus scrapes on a Ray pod
    recipe = _ray_serve_recipe()
    contract_series = {name for name in promql.SERIES_NAMES if name.startswith(contract.RAY_PREFIX)}
    queries = (
        promql.request_rate(recipe, "5m"), promql.error_ratio(recipe, "5m"),
        promql.latency_quantile(recipe, 0.99, "5m"), promql.rollout_weight(recipe),
    )
    read = {name for query in queries for name in re.findall(r"\b(ray_[a-z_]+)\{", query)}
    assert read and read <= contract_series
    assert all('model="churn"' in query for query in queries)

    def expected(ray: dict) -> list[str]:
        """What Ray's exporter does not (yet) show as the app does; empty when it all matches."""
        wrong = []
        checks = [
            (requests, {"model": "churn", "version": "2", "status": "200"}, served),
            (requests, {"model": "churn", "status": "400"}, refused),
            (f"{duration}_count", {"model": "churn", "version": "2"}, value(app, f"{duration}_count", model="churn", version="2")),
            (weight, {"model": "churn", "version": "2"}, 100.0),
            (f"{contract.BATCH_SIZE.name}_count", {}, value(app, f"{contract.BATCH_SIZE.name}_count")),
            (contract.INFLIGHT.name, {}, 0.0),
        ]
        for name, labels, want in checks:
            got = value(ray, contract.RAY_PREFIX + name, **labels)
            if got != want:
                wrong.append(f"{contract.RAY_PREFIX}{name}{labels}: {got}, the app: {want}")
        ray_buckets = buckets(ray, contract.RAY_PREFIX + duration, model="churn", version="2")
        app_buckets = buckets(app, duration, model="churn", version="2")
        if ray_buckets != app_buckets:
            wrong.append(f"{contract.RAY_PREFIX}{duration}_bucket: {ray_buckets}, the app: {app_buckets}")
        return wrong

    deadline = time.monotonic() + EXPORT_DEADLINE_S
    while True:
        try:
            ray = scrape(ray_serve.exporter)
        except OSError as exc:  # the agent's exporter starts after Ray
            ray, wrong = {}, [f"{ray_serve.exporter}: {exc}"]
        else:
            wrong = expected(ray)
        if not wrong:
            break
        if time.monotonic() > deadline:
            exported = sorted(name for name in ray if "mlops" in name)
            pytest.fail(f"Ray's exporter after {EXPORT_DEADLINE_S} s: " + "; ".join(wrong) + f"; its mlops series: {exported}")
        time.sleep(1)
    # ... and it stays so: nothing is counted twice when the agent publishes again
    time.sleep(3 * EXPORT_INTERVAL_MS / 1000)
    ray = scrape(ray_serve.exporter)
    assert expected(ray) == []

    # every `ray_` series of the contract is there, labelled as the queries select
    assert read <= set(ray), sorted(read - set(ray))
    assert contract_series <= set(ray), sorted(contract_series - set(ray))
    for name in (f"ray_{requests}", f"ray_{duration}_bucket", f"ray_{weight}"):
        assert all({"model", "version"} <= set(labels) for labels, _ in ray[name]), name
    assert {labels["status"] for labels, _ in ray[f"ray_{requests}"]} >= {"200", "400"}


def _ray_serve_recipe():
    from framework import api

    return api.load_recipe("churn", overrides=["serving=ray_serve"], project=REPO).recipe
