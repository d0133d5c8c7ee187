"""`POST /v2/models/{name}[/versions/{v}]/feedback`: rewards for a bandit rolling out on
`reward: feedback`; every other router refuses them with 409; bad bodies get a 400."""

from __future__ import annotations

import re

import httpx
import orjson
import pytest

from framework.runtime.serving.routers import BanditRouter, CanaryRouter
from framework.runtime.serving.host import EmbeddedServer, build_app
from tests.serving.conftest import inputs
from tests.serving.test_http import request


@pytest.fixture
def serve(tmp_path, model_repo, churn_recipe):
    servers = []

    def start(router):
        app = build_app(churn_recipe, model_repo, tmp_path, router=router, log_sample_rate=0)
        server = EmbeddedServer(app).start()
        servers.append(server)
        return httpx.Client(base_url=f"http://{server.url}", timeout=30)

    yield start
    for server in servers:
        server.stop()


def test_rewards_reach_the_bandit_from_the_version_the_answer_named(serve):
    router = BanditRouter("churn", "1", "2", min_percent=5, reward="feedback", seed=1)
    with serve(router) as http:
        answer = http.post("/v2/models/churn/infer", content=orjson.dumps(request(inputs(1)))).json()
        version = answer["model_version"]
        response = http.post("/v2/models/churn/feedback", json={"model_version": version, "reward": 1})
        assert response.status_code == 200, response.text
        assert response.json() == {"model_name": "churn", "model_version": version, "reward": 1.0}
        for _ in range(40):
            assert http.post("/v2/models/churn/versions/1/feedback", json={"reward": 0.0}).status_code == 200
            assert http.post("/v2/models/churn/versions/2/feedback", json={"reward": 0.75}).status_code == 200
        weights = http.get("/metrics").text
    arm = router.arms.index(version)
    assert router.successes[arm] >= 1.0
    assert router.failures == pytest.approx([40.0, 10.0])
    assert router.prob_best()["2"] > 0.99  # 30 of 40 beats 0 of 40
    share = re.search(r'^mlops_rollout_weight\{model="churn",version="2"\} (\S+)$', weights, re.M)
    assert float(share.group(1)) == pytest.approx(95.0, abs=0.5)  # the allocation moved: floor 5% + 90%


@pytest.mark.parametrize(
    "path, body, status, message",
    [
        ("/v2/models/churn/feedback", b"{", 400, "malformed JSON in the request body: "),
        ("/v2/models/churn/feedback", b"[1]", 400, 'the body must be a JSON object: {"model_version": "<v>", "reward": <0..1>}'),
        ("/v2/models/churn/feedback", b'{"model_version": "2"}', 400, "reward must be a number from 0 to 1, got None"),
        ("/v2/models/churn/feedback", b'{"model_version": "2", "reward": 1.5}', 400, "reward must be a number from 0 to 1, got 1.5"),
        ("/v2/models/churn/feedback", b'{"model_version": "2", "reward": true}', 400, "reward must be a number from 0 to 1, got True"),
        ("/v2/models/churn/feedback", b'{"reward": 1}', 400,
         "name the version that answered: model_version in the body (as the infer response gave it), "
         "or POST /v2/models/churn/versions/<v>/feedback"),
        ("/v2/models/churn/feedback", b'{"model_version": "7", "reward": 1}', 404,
         "model 'churn' has no version '7' loaded; loaded versions: 1, 2"),
        ("/v2/models/churn/versions/7/feedback", b'{"reward": 1}', 404, "model 'churn' has no version '7' loaded; loaded versions: 1, 2"),
        ("/v2/models/nope/feedback", b'{"reward": 1}', 404, "unknown model 'nope'; this server serves: churn"),
    ],
)
def test_bad_feedback_is_a_4xx_and_changes_nothing(serve, path, body, status, message):
    router = BanditRouter("churn", "1", "2", reward="feedback")
    with serve(router) as http:
        response = http.post(path, content=body)
        assert response.status_code == status
        assert response.json()["error"].startswith(message)
        assert http.get("/v2/models/churn/feedback").status_code == 405
        assert http.post("/v2/models/churn/infer", content=orjson.dumps(request(inputs(1)))).status_code == 200
    assert router.successes == [0.0, 0.0] and router.failures == [0.0, 0.0]


@pytest.mark.parametrize(
    "router, name",
    [
        (None, "no rollout"),
        (CanaryRouter("churn", "1", "2", weight=10), "canary"),
        (BanditRouter("churn", "1", "2", reward="success"), "bandit"),
    ],
)
def test_routers_that_do_not_learn_from_rewards_refuse_them(serve, router, name):
    with serve(router) as http:
        response = http.post("/v2/models/churn/feedback", json={"model_version": "2", "reward": 1})
    assert response.status_code == 409
    assert response.json()["error"] == (
        f"model 'churn' takes no feedback: its router ({name}) does not learn from rewards; "
        "feedback is for rollout.strategy bandit with reward: feedback"
    )
