"""The rollout router hook: route, observe, shadow + compare, weights; explicit versions bypass it."""

from __future__ import annotations

import re
import time

import httpx
import numpy as np
import orjson
import pytest

from framework.runtime.serving.host import EmbeddedServer, build_app
from framework.runtime.serving.protocol import request_inputs
from framework.runtime.serving.router import LatestVersionRouter, Router
from tests.serving.conftest import inputs, ort_outputs


class RecordingRouter:
    """Primary and shadow from headers; records every call."""

    def __init__(self):
        self.calls: list[tuple] = []
        self.shares = {"1": 0.9, "2": 0.1}

    def route(self, model, headers):
        self.calls.append(("route", model, headers.get("x-mlops-candidate")))
        if headers.get("x-route") == "bogus":
            return "42", None
        if headers.get("x-mlops-candidate") == "true":
            return "2", None
        return "1", headers.get("x-shadow")

    def observe(self, model, version, ok, latency_s):
        self.calls.append(("observe", model, version, ok, latency_s))

    def compare(self, model, primary_version, shadow_version, agree, latency_delta_s):
        self.calls.append(("compare", model, primary_version, shadow_version, agree, latency_delta_s))

    def weights(self, model):
        return dict(self.shares)


def body(tensors: dict[str, np.ndarray]) -> bytes:
    return orjson.dumps({"inputs": request_inputs(tensors)})


@pytest.fixture(scope="module")
def routed(tmp_path_factory, model_repo, churn_recipe):
    router = RecordingRouter()
    app = build_app(churn_recipe, model_repo, tmp_path_factory.mktemp("state"), router=router, log_sample_rate=0)
    with EmbeddedServer(app) as server, httpx.Client(base_url=f"http://{server.url}", timeout=30) as http:
        yield router, app, http


def wait_for(predicate, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_default_router_is_the_newest_version():
    router = LatestVersionRouter({"churn": ["1", "10", "2"]})
    assert isinstance(router, Router)
    assert router.route("churn", {}) == ("10", None)
    assert router.weights("churn") == {"10": 1.0} and router.weights("other") == {}


def test_route_then_observe_after_the_answer(routed, model_repo):
    router, _, http = routed
    router.calls.clear()
    x = inputs(2)
    response = http.post("/v2/models/churn/infer", content=body(x), headers={"x-mlops-candidate": "true"})
    assert response.json()["model_version"] == "2"
    expected = ort_outputs(model_repo, "2", x)
    outputs = response.json()["outputs"]
    np.testing.assert_allclose(np.reshape(outputs[0]["data"], (2, 2)), expected["probabilities"], rtol=1e-6)
    assert outputs[1]["data"] == expected["label"][:, 0].tolist()
    wait_for(lambda: len(router.calls) == 2)
    (route, observe) = router.calls
    assert route == ("route", "churn", "true")
    assert observe[:4] == ("observe", "churn", "2", True) and isinstance(observe[4], float) and observe[4] > 0


def test_explicit_version_and_bad_requests_bypass_the_router(routed):
    router, _, http = routed
    router.calls.clear()
    assert http.post("/v2/models/churn/versions/2/infer", content=body(inputs(1))).status_code == 200
    assert http.post("/v2/models/churn/infer", content=b"{").status_code == 400
    # then a routed one: the app reports each request before it reads the next, so by
    # this one's observe any call of the two above would be in the list
    last = http.post("/v2/models/churn/infer", content=body(inputs(1)), headers={"x-mlops-candidate": "last"})
    assert last.status_code == 200
    wait_for(lambda: any(c[0] == "observe" for c in router.calls))
    assert [c[:3] for c in router.calls] == [("route", "churn", "last"), ("observe", "churn", "1")]


def test_shadow_runs_in_the_background_and_is_compared(routed, model_repo):
    router, _, http = routed
    router.calls.clear()
    x = inputs(4, seed=3)
    response = http.post("/v2/models/churn/infer", content=body(x), headers={"x-shadow": "2"})
    assert response.json()["model_version"] == "1"
    wait_for(lambda: any(c[0] == "compare" for c in router.calls))
    compare = next(c for c in router.calls if c[0] == "compare")
    assert compare[:4] == ("compare", "churn", "1", "2")
    assert isinstance(compare[4], bool) and isinstance(compare[5], float)
    from framework.runtime.serving.stats import agree

    # the same rows through both versions: probabilities by top class, labels as text
    assert compare[4] == agree(ort_outputs(model_repo, "1", x), ort_outputs(model_repo, "2", x))
    observed = [c for c in router.calls if c[0] == "observe"]
    assert [c[2] for c in observed] == ["1"]  # the shadow's success is a comparison, not an answer


def test_a_failing_shadow_never_fails_the_primary(routed):
    router, app, http = routed
    batcher = app.batchers[("churn", "2")]
    healthy = batcher.runner

    class Broken:
        def run(self, inputs):
            raise RuntimeError("shadow model broke")

    batcher.runner = Broken()
    try:
        router.calls.clear()
        response = http.post("/v2/models/churn/infer", content=body(inputs(1)), headers={"x-shadow": "2"})
        assert response.status_code == 200 and response.json()["model_version"] == "1"
        wait_for(lambda: any(c[:3] == ("observe", "churn", "2") for c in router.calls))
        failed = next(c for c in router.calls if c[:3] == ("observe", "churn", "2"))
        assert failed[3] is False
        assert not any(c[0] == "compare" for c in router.calls)
        text = http.get("/metrics").text
        assert re.search(r'^mlops_requests_total\{model="churn",status="500",version="2"\} 1.0$', text, re.M)
    finally:
        batcher.runner = healthy


def test_a_primary_failure_is_observed_not_ok_and_answered_500(routed):
    router, app, http = routed
    batcher = app.batchers[("churn", "1")]
    healthy = batcher.runner

    class Broken:
        def run(self, inputs):
            raise RuntimeError("model broke")

    batcher.runner = Broken()
    try:
        router.calls.clear()
        response = http.post("/v2/models/churn/infer", content=body(inputs(1)))
        assert (response.status_code, response.json()["error"]) == (500, "inference failed: RuntimeError: model broke")
        wait_for(lambda: any(c[0] == "observe" for c in router.calls))
        assert next(c for c in router.calls if c[0] == "observe")[2:4] == ("1", False)
    finally:
        batcher.runner = healthy
    assert http.post("/v2/models/churn/infer", content=body(inputs(1))).status_code == 200


def test_a_router_choosing_an_unloaded_version_is_a_500_that_says_so(routed):
    _, _, http = routed
    response = http.post("/v2/models/churn/infer", content=body(inputs(1)), headers={"x-route": "bogus"})
    assert response.status_code == 500
    assert response.json()["error"] == "inference failed: RuntimeError: the router chose version '42' of model 'churn', which is not loaded"


def test_weights_are_the_rollout_weight_gauge_in_percent(routed):
    router, _, http = routed
    text = http.get("/metrics").text
    assert re.search(r'^mlops_rollout_weight\{model="churn",version="1"\} 90.0$', text, re.M)
    assert re.search(r'^mlops_rollout_weight\{model="churn",version="2"\} 10.0$', text, re.M)
    router.shares = {"2": 1.0}
    try:
        text = http.get("/metrics").text
    finally:
        router.shares = {"1": 0.9, "2": 0.1}  # the module's router: as the other tests found it
    assert 'mlops_rollout_weight{model="churn",version="1"}' not in text
    assert re.search(r'^mlops_rollout_weight\{model="churn",version="2"\} 100.0$', text, re.M)


def test_a_router_factory_gets_the_loaded_repository(tmp_path, model_repo, churn_recipe):
    seen = {}

    def factory(repository):
        seen.update(repository.versions())
        return LatestVersionRouter(repository.versions())

    app = build_app(churn_recipe, model_repo, tmp_path, router=factory, log_sample_rate=0)
    assert seen == {"churn": ["1", "2"]} and isinstance(app.router, LatestVersionRouter)
