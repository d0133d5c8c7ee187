"""The embedded host through tritonclient.http and raw HTTP: results equal ONNX Runtime's,
metadata and health, every bad request a 4xx with an actionable message, metrics, logs."""

from __future__ import annotations

import gzip
import re
import time

import httpx
import numpy as np
import orjson
import pandas as pd
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from tests.serving.conftest import ort_outputs

WIDTH = 13


def features(rows: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, WIDTH)).astype(np.float32)
    x[:, 1] = rng.uniform(0, 72, size=rows)  # something like tenure months
    return x


def request(x: np.ndarray | list, shape=None, name="features", datatype="FP32") -> dict:
    data = x.reshape(-1).tolist() if isinstance(x, np.ndarray) else x
    return {"inputs": [{"name": name, "shape": list(shape or x.shape), "datatype": datatype, "data": data}]}


@pytest.fixture(scope="module")
def client(served):
    with triton.InferenceServerClient(served.url) as c:
        yield c


@pytest.fixture(scope="module")
def http(served):
    with httpx.Client(base_url=served.base, timeout=30) as c:
        yield c


def infer_ok(http) -> None:
    """The server still answers a good request."""
    x = features(2, seed=99)
    response = http.post("/v2/models/churn/infer", content=orjson.dumps(request(x)))
    assert response.status_code == 200, response.text
    assert np.asarray(response.json()["outputs"][0]["data"]).shape == (4,)


# --- tritonclient.http, unchanged ------------------------------------------------------
@pytest.mark.parametrize("binary_in", [True, False], ids=["binary-in", "json-in"])
@pytest.mark.parametrize("binary_out", [True, False, None], ids=["binary-out", "json-out", "default-out"])
def test_tritonclient_infer_equals_onnxruntime(client, served, binary_in, binary_out):
    x = features(5)
    tensor = triton.InferInput("features", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x, binary_data=binary_in)
    outputs = None if binary_out is None else [triton.InferRequestedOutput("probabilities", binary_data=binary_out)]
    result = client.infer("churn", [tensor], outputs=outputs, request_id="r-1")
    got = result.as_numpy("probabilities")
    np.testing.assert_allclose(got, ort_outputs(served.repo, "2", x), rtol=1e-6, atol=1e-7)  # the newest version
    response = result.get_response()
    assert (response["model_name"], response["model_version"], response["id"]) == ("churn", "2", "r-1")
    assert ("parameters" in response["outputs"][0]) == (binary_out is not False)


@pytest.mark.parametrize("version", ["1", "2"])
def test_explicit_version(client, served, version):
    x = features(3, seed=int(version))
    tensor = triton.InferInput("features", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x)
    result = client.infer("churn", [tensor], model_version=version)
    np.testing.assert_allclose(result.as_numpy("probabilities"), ort_outputs(served.repo, version, x), rtol=1e-6, atol=1e-7)
    assert result.get_response()["model_version"] == version


def test_versions_differ(served):
    x = features(4)
    assert not np.allclose(ort_outputs(served.repo, "1", x), ort_outputs(served.repo, "2", x))


def test_classification_extension(client, served):
    x = features(3)
    tensor = triton.InferInput("features", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x)
    for binary in (True, False):
        requested = triton.InferRequestedOutput("probabilities", binary_data=binary, class_count=1)
        top = client.infer("churn", [tensor], outputs=[requested]).as_numpy("probabilities")
        expected = ort_outputs(served.repo, "2", x)
        assert top.shape == (3, 1)
        for row, cell in zip(expected, top[:, 0]):
            score, index = (cell.decode() if isinstance(cell, bytes) else cell).split(":")
            assert int(index) == int(row.argmax()) and float(score) == pytest.approx(row.max(), abs=1e-6)


def test_health_metadata_ready_config_index(client):
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("churn") and client.is_model_ready("churn", "1")
    assert not client.is_model_ready("churn", "7") and not client.is_model_ready("nope")
    assert client.get_server_metadata()["extensions"] == ["binary_tensor_data", "classification", "model_repository"]
    assert client.get_model_metadata("churn") == {
        "name": "churn",
        "versions": ["1", "2"],
        "platform": "onnxruntime_onnx",
        "inputs": [{"name": "features", "datatype": "FP32", "shape": [-1, WIDTH]}],
        "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]}],
    }
    assert client.get_model_metadata("churn", "1")["versions"] == ["1"]
    config = client.get_model_config("churn")
    assert (config["max_batch_size"], config["dynamic_batching"]["preferred_batch_size"]) == (32, [8, 16, 32])
    assert client.get_model_repository_index() == [
        {"name": "churn", "version": "1", "state": "READY", "reason": ""},
        {"name": "churn", "version": "2", "state": "READY", "reason": ""},
    ]


def test_tritonclient_sees_the_error_message(client):
    tensor = triton.InferInput("features", [1, 12], "FP32")
    tensor.set_data_from_numpy(np.zeros((1, 12), dtype=np.float32))
    with pytest.raises(InferenceServerException) as caught:
        client.infer("churn", [tensor])
    assert caught.value.status() == "400"
    assert caught.value.message() == "input 'features' has shape [1, 12]; model 'churn' expects [-1, 13] (-1: any size)"


# --- bad requests: a 4xx that says what to change, and the server keeps serving ------------
GOOD = request(np.zeros((1, WIDTH), dtype=np.float32))
BAD_REQUESTS = {
    "malformed JSON": ("/v2/models/churn/infer", b'{"inputs": [', 400, r"malformed JSON in the request body: .+"),
    "not an object": ("/v2/models/churn/infer", b"[1, 2]", 400, re.escape('the request body must be a JSON object: {"inputs": [{"name", "shape", "datatype", "data"}]}')),
    "no inputs": ("/v2/models/churn/infer", b"{}", 400, re.escape("the request has no 'inputs' list: send one entry per model input")),
    "unknown model": ("/v2/models/nope/infer", GOOD, 404, re.escape("unknown model 'nope'; this server serves: churn")),
    "unknown version": ("/v2/models/churn/versions/9/infer", GOOD, 404, re.escape("model 'churn' has no version '9' loaded; loaded versions: 1, 2")),
    "wrong input name": (
        "/v2/models/churn/infer", request(np.zeros((1, WIDTH), dtype=np.float32), name="feature"), 400,
        re.escape("unknown input 'feature' for model 'churn'; its inputs are: features"),
    ),
    "wrong datatype": (
        "/v2/models/churn/infer", request(np.zeros((1, WIDTH)), datatype="FP64"), 400,
        re.escape("input 'features' has datatype 'FP64'; model 'churn' expects FP32"),
    ),
    "wrong shape": (
        "/v2/models/churn/infer", request(np.zeros((1, 12), dtype=np.float32)), 400,
        re.escape("input 'features' has shape [1, 12]; model 'churn' expects [-1, 13] (-1: any size)"),
    ),
    "shape not integers": (
        "/v2/models/churn/infer", request([0.0] * WIDTH, shape=[1, "13"]), 400,
        re.escape("input 'features' needs a 'shape' list of integers, e.g. [1, 13]"),
    ),
    "data length": (
        "/v2/models/churn/infer", request([0.0] * 12, shape=[1, WIDTH]), 400,
        re.escape("input 'features' has 12 values but shape [1, 13] needs 13"),
    ),
    "data not numbers": (
        "/v2/models/churn/infer", request(["a"] * WIDTH, shape=[1, WIDTH]), 400,
        re.escape("input 'features': 'data' must hold only numbers, in equal-length rows when nested"),
    ),
    "ragged rows": (
        "/v2/models/churn/infer", request([[0.0] * WIDTH, [0.0] * 12], shape=[2, WIDTH]), 400,
        re.escape("input 'features': 'data' must hold only numbers, in equal-length rows when nested"),
    ),
    "batch above max_batch_size": (
        "/v2/models/churn/infer", request(np.zeros((33, WIDTH), dtype=np.float32)), 400,
        re.escape("input 'features' has batch size 33 but model 'churn' takes at most 32 rows (max_batch_size); split it into smaller requests"),
    ),
    "empty batch": (
        "/v2/models/churn/infer", request([], shape=[0, WIDTH]), 400,
        re.escape("input 'features' has batch size 0; send at least one row"),
    ),
    "unknown output": (
        "/v2/models/churn/infer", {**GOOD, "outputs": [{"name": "probs"}]}, 400,
        re.escape("unknown output 'probs' for model 'churn'; its outputs are: probabilities"),
    ),
    "input twice": (
        "/v2/models/churn/infer", {"inputs": GOOD["inputs"] * 2}, 400, re.escape("input 'features' is given twice"),
    ),
    "unknown route": ("/v2/modelz", GOOD, 404, re.escape("no route POST /v2/modelz; the API is KServe v2 under /v2")),
}


@pytest.mark.parametrize("case", BAD_REQUESTS)
def test_bad_requests(http, case):
    path, body, status, message = BAD_REQUESTS[case]
    response = http.post(path, content=body if isinstance(body, bytes) else orjson.dumps(body))
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert re.fullmatch(message, response.json()["error"]), response.json()["error"]
    infer_ok(http)


def test_binary_data_errors(http):
    x = np.zeros((1, WIDTH), dtype=np.float32)
    header = orjson.dumps({"inputs": [{"name": "features", "shape": [1, WIDTH], "datatype": "FP32", "parameters": {"binary_data_size": 52}}]})
    cases = [
        (header + x.tobytes()[:40], len(header), "input 'features' wants 52 bytes of binary data but only 40 follow the JSON header"),
        (header + x.tobytes() + b"xx", len(header), "2 bytes follow the JSON header that no input claims (binary_data_size)"),
        (header + x.tobytes(), len(header) + 1000, f"Inference-Header-Content-Length is {len(header) + 1000} but the body has {len(header) + 52} bytes"),
        (header.replace(b"52", b"48") + x.tobytes()[:48], len(header), "input 'features' has 48 bytes of binary data; shape [1, 13] of FP32 needs 52"),
    ]
    for body, length, message in cases:
        response = http.post("/v2/models/churn/infer", content=body, headers={"Inference-Header-Content-Length": str(length)})
        assert (response.status_code, response.json()["error"]) == (400, message)
    infer_ok(http)


def test_oversized_body_is_413_declared_or_streamed(http, served):
    limit = served.app.max_body_bytes
    big = b"{" + b" " * limit + b"}"
    response = http.post("/v2/models/churn/infer", content=big)
    assert response.status_code == 413
    assert response.json()["error"] == f"request body of {len(big)} bytes exceeds the limit of {limit} bytes; send fewer rows per request"
    infer_ok(http)

    def chunks():  # no Content-Length: the limit holds while reading
        for _ in range(limit // 65536 + 2):
            yield b" " * 65536

    response = http.post("/v2/models/churn/infer", content=chunks())
    assert response.status_code == 413 and "exceeds the limit" in response.json()["error"]
    infer_ok(http)


def test_compressed_bodies(http, served):
    x = features(2)
    body = gzip.compress(orjson.dumps(request(x)))
    response = http.post("/v2/models/churn/infer", content=body, headers={"Content-Encoding": "gzip"})
    assert response.status_code == 200
    np.testing.assert_allclose(np.reshape(response.json()["outputs"][0]["data"], (2, 2)), ort_outputs(served.repo, "2", x), rtol=1e-6)
    response = http.post("/v2/models/churn/infer", content=body, headers={"Content-Encoding": "br"})
    assert (response.status_code, response.json()["error"]) == (415, "unsupported Content-Encoding 'br'; use gzip, deflate or none")
    response = http.post("/v2/models/churn/infer", content=b"not gzip", headers={"Content-Encoding": "gzip"})
    assert response.status_code == 400 and response.json()["error"].startswith("the body is not valid gzip data")
    infer_ok(http)


def test_wrong_methods(http):
    response = http.get("/v2/models/churn/infer")
    assert (response.status_code, response.json()["error"]) == (405, "use POST for /v2/models/churn/infer")
    response = http.post("/v2/models/churn", content=b"{}")
    assert (response.status_code, response.json()["error"]) == (405, "use GET for /v2/models/churn")
    infer_ok(http)


def test_nested_json_data_and_request_level_binary_output(http, served):
    x = features(2)
    body = {"inputs": [{"name": "features", "shape": [2, WIDTH], "datatype": "FP32", "data": x.tolist()}],
            "parameters": {"binary_data_output": True}}
    response = http.post("/v2/models/churn/infer", content=orjson.dumps(body))
    length = int(response.headers["inference-header-content-length"])
    header = orjson.loads(response.content[:length])
    assert header["outputs"][0]["parameters"] == {"binary_data_size": 16}
    got = np.frombuffer(response.content[length:], dtype="<f4").reshape(2, 2)
    np.testing.assert_allclose(got, ort_outputs(served.repo, "2", x), rtol=1e-6)


# --- metrics and the request log ------------------------------------------------------
def test_metrics_names_and_labels(http):
    from framework.targets.metrics import APP_METRICS

    infer_ok(http)
    http.post("/v2/models/churn/infer", content=b"{")
    http.post("/v2/models/churn/versions/1/infer", content=orjson.dumps(GOOD))
    response = http.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    for spec in APP_METRICS:
        assert f"# TYPE {spec.name} {spec.kind}" in text, spec.name
    assert re.search(r'^mlops_requests_total\{model="churn",status="200",version="2"\} [1-9]', text, re.M)
    assert re.search(r'^mlops_requests_total\{model="churn",status="200",version="1"\} [1-9]', text, re.M)
    assert re.search(r'^mlops_requests_total\{model="churn",status="400",version=""\} [1-9]', text, re.M)
    buckets = re.findall(r'^mlops_request_duration_seconds_bucket\{le="([^"]+)",model="churn",version="2"\}', text, re.M)
    assert buckets == ["0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "+Inf"]
    assert re.search(r'^mlops_batch_size_bucket\{le="1.0"\} [1-9]', text, re.M)
    assert re.search(r"^mlops_inflight_requests 0.0$", text, re.M)
    assert re.search(r'^mlops_rollout_weight\{model="churn",version="2"\} 100.0$', text, re.M)


def test_request_log_is_parquet_readable_by_pandas(http, served):
    x = features(3, seed=7)
    before = time.time()
    response = http.post("/v2/models/churn/versions/1/infer", content=orjson.dumps(request(x)))
    assert response.status_code == 200
    served.app.request_log.flush()
    folder = served.state / "requests" / "churn"
    frame = pd.read_parquet(folder)
    from framework.signature import model_signature

    columns = list(model_signature(served.recipe).columns)
    assert list(frame.columns) == ["timestamp", "model", "version", "latency_ms", *columns, "probabilities_0", "probabilities_1"]
    mine = frame[(frame["version"] == "1") & (frame["timestamp"] >= pd.Timestamp(before, unit="s", tz="UTC").floor("ms"))]
    mine = mine[np.isclose(mine[columns[0]], x[0, 0]) | np.isclose(mine[columns[0]], x[1, 0]) | np.isclose(mine[columns[0]], x[2, 0])]
    assert len(mine) == 3
    np.testing.assert_allclose(mine[columns].to_numpy(), x, rtol=1e-6)
    np.testing.assert_allclose(mine[["probabilities_0", "probabilities_1"]].to_numpy(), ort_outputs(served.repo, "1", x), rtol=1e-6)
    assert (mine["model"] == "churn").all() and (mine["latency_ms"] > 0).all()
    assert str(frame["timestamp"].dtype) == "datetime64[us, UTC]"
    assert not list(folder.glob(".*"))  # no half-written file left
