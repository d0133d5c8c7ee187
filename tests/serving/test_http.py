"""The embedded host through tritonclient.http and raw HTTP on the raw-column contract
(named columns in: FP32 numbers, BYTES categories; `probabilities` and `label` out):
results equal ONNX Runtime's, BYTES in JSON and in the binary extension, the
row-oriented JSON form curl users send, metadata (columns, datatypes, class names) and
health, every bad request a 4xx with an actionable message, metrics, logs."""

from __future__ import annotations

import gzip
import re
import struct
import time

import httpx
import numpy as np
import orjson
import pandas as pd
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from framework.runtime.serving.protocol import request_inputs
from tests.serving.conftest import churn_pipeline, inputs, messy_inputs, ort_outputs, text, triton_inputs

COLUMNS = ("tenure_months", "monthly_charges", "total_charges", "support_calls", "num_products", "senior_citizen",
           "contract", "payment_method")
CATEGORICAL = ("contract", "payment_method")
NAMES = ", ".join(COLUMNS)
CLASSES = ["0", "1"]


def request(tensors: dict[str, np.ndarray]) -> dict:
    """The KServe v2 JSON body of request tensors (NaN as null)."""
    return {"inputs": request_inputs(tensors)}


def altered(column: str, rows: int = 1, **fields) -> dict:
    """A good request of `rows` rows whose input `column` has `fields` changed."""
    body = request(inputs(rows, seed=99))
    (item,) = [i for i in body["inputs"] if i["name"] == column]
    item.update(fields)
    return body


def without(name: str) -> dict:
    body = request(inputs(1, seed=99))
    body["inputs"] = [i for i in body["inputs"] if i["name"] != name]
    return body


def answer(response) -> dict[str, np.ndarray]:
    """A JSON infer response's outputs by name, shaped."""
    out = {}
    for o in response.json()["outputs"]:
        dtype = object if o["datatype"] == "BYTES" else np.float32
        out[o["name"]] = np.asarray(o["data"], dtype=dtype).reshape(o["shape"])
    return out


def assert_same(got: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> None:
    np.testing.assert_allclose(got["probabilities"], expected["probabilities"], rtol=1e-6, atol=1e-7)
    assert text(got["label"]).tolist() == text(expected["label"]).tolist()


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
    response = http.post("/v2/models/churn/infer", content=orjson.dumps(request(inputs(2, seed=99))))
    assert response.status_code == 200, response.text
    got = answer(response)
    assert got["probabilities"].shape == (2, 2) and set(got["label"].reshape(-1)) <= set(CLASSES)


# --- tritonclient.http: named columns in, probabilities and labels out -------------------
@pytest.mark.parametrize("binary_in", [True, False], ids=["binary-in", "json-in"])
@pytest.mark.parametrize("binary_out", [True, False, None], ids=["binary-out", "json-out", "default-out"])
def test_tritonclient_infer_equals_onnxruntime(client, served, binary_in, binary_out):
    x = messy_inputs(5)  # a null number, a null category and unseen ones, FP32 and BYTES columns
    if not binary_in:  # tritonclient writes NaN into JSON as a bare NaN, which JSON has not
        x["total_charges"] = np.nan_to_num(x["total_charges"], nan=50.0)
    outputs = None if binary_out is None else [
        triton.InferRequestedOutput("probabilities", binary_data=binary_out),
        triton.InferRequestedOutput("label", binary_data=binary_out),
    ]
    result = client.infer("churn", triton_inputs(x, binary_in), outputs=outputs, request_id="r-1")
    expected = ort_outputs(served.repo, "2", x)  # the newest version
    assert_same({"probabilities": result.as_numpy("probabilities"), "label": result.as_numpy("label")}, expected)
    assert set(text(result.as_numpy("label")).reshape(-1)) <= set(CLASSES)
    response = result.get_response()
    assert (response["model_name"], response["model_version"], response["id"]) == ("churn", "2", "r-1")
    assert [o["name"] for o in response["outputs"]] == ["probabilities", "label"]
    assert [o["datatype"] for o in response["outputs"]] == ["FP32", "BYTES"]
    assert all(("parameters" in o) == (binary_out is not False) for o in response["outputs"])


def test_labels_are_the_class_names_of_the_top_probability(client, served):
    x = inputs(32, seed=4)
    result = client.infer("churn", triton_inputs(x))
    probabilities, labels = result.as_numpy("probabilities"), text(result.as_numpy("label"))
    assert labels.shape == (32, 1)
    assert labels[:, 0].tolist() == [CLASSES[i] for i in probabilities.argmax(axis=1)]
    assert set(labels[:, 0]) == set(CLASSES)  # both classes occur: the labels carry information


def test_only_the_label_when_only_the_label_is_asked_for(client, served):
    x = inputs(3, seed=5)
    result = client.infer("churn", triton_inputs(x), outputs=[triton.InferRequestedOutput("label")])
    assert [o["name"] for o in result.get_response()["outputs"]] == ["label"]
    assert text(result.as_numpy("label")).tolist() == ort_outputs(served.repo, "2", x)["label"].tolist()


@pytest.mark.parametrize("version", ["1", "2"])
def test_explicit_version(client, served, version):
    x = inputs(3, seed=int(version))
    result = client.infer("churn", triton_inputs(x), model_version=version)
    assert_same({"probabilities": result.as_numpy("probabilities"), "label": result.as_numpy("label")},
                ort_outputs(served.repo, version, x))
    assert result.get_response()["model_version"] == version


def test_versions_differ(served):
    x = inputs(4)
    assert not np.allclose(ort_outputs(served.repo, "1", x)["probabilities"], ort_outputs(served.repo, "2", x)["probabilities"])


def test_classification_extension(client, served):
    x = inputs(3)
    for binary in (True, False):
        requested = triton.InferRequestedOutput("probabilities", binary_data=binary, class_count=1)
        top = client.infer("churn", triton_inputs(x), outputs=[requested]).as_numpy("probabilities")
        expected = ort_outputs(served.repo, "2", x)["probabilities"]
        assert top.shape == (3, 1)
        for row, cell in zip(expected, top[:, 0]):
            score, index = (cell.decode() if isinstance(cell, bytes) else cell).split(":")
            assert int(index) == int(row.argmax()) and float(score) == pytest.approx(row.max(), abs=1e-6)


def test_health_metadata_ready_config_index(client):
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("churn") and client.is_model_ready("churn", "1")
    assert not client.is_model_ready("churn", "7") and not client.is_model_ready("nope")
    assert client.get_server_metadata()["extensions"] == ["binary_tensor_data", "classification", "model_repository"]
    columns = [{"name": c, "datatype": "BYTES" if c in CATEGORICAL else "FP32", "shape": [-1, 1]} for c in COLUMNS]
    assert client.get_model_metadata("churn") == {
        "name": "churn",
        "versions": ["1", "2"],
        "platform": "onnxruntime_onnx",
        "inputs": columns,
        "outputs": [
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]},
            {"name": "label", "datatype": "BYTES", "shape": [-1, 1]},
        ],
        "parameters": {"classes": CLASSES},  # the class names, in the order of `probabilities`
    }
    assert churn_pipeline().class_names == CLASSES
    assert client.get_model_metadata("churn", "1")["versions"] == ["1"]
    assert client.get_model_metadata("churn", "1")["parameters"] == {"classes": CLASSES}
    config = client.get_model_config("churn")
    assert (config["max_batch_size"], config["dynamic_batching"]["preferred_batch_size"]) == (32, [8, 16, 32])
    assert [(t["name"], t["data_type"], t["dims"]) for t in config["input"]] == [
        (c, "TYPE_STRING" if c in CATEGORICAL else "TYPE_FP32", [1]) for c in COLUMNS
    ]
    assert [(t["name"], t["data_type"], t["dims"]) for t in config["output"]] == [
        ("probabilities", "TYPE_FP32", [2]), ("label", "TYPE_STRING", [1]),
    ]
    assert client.get_model_repository_index() == [
        {"name": "churn", "version": "1", "state": "READY", "reason": ""},
        {"name": "churn", "version": "2", "state": "READY", "reason": ""},
    ]


def test_tritonclient_sees_the_error_message(client):
    tensors = triton_inputs(inputs(1))
    wrong = triton.InferInput("tenure_months", [1, 2], "FP32")
    wrong.set_data_from_numpy(np.zeros((1, 2), dtype=np.float32))
    with pytest.raises(InferenceServerException) as caught:
        client.infer("churn", [wrong, *tensors[1:]])
    assert caught.value.status() == "400"
    assert caught.value.message() == "input 'tenure_months' has shape [1, 2]; model 'churn' expects [-1, 1] (-1: any size)"
    wrong = triton.InferInput("contract", [1, 1], "FP32")  # a category sent as a number
    wrong.set_data_from_numpy(np.zeros((1, 1), dtype=np.float32))
    with pytest.raises(InferenceServerException) as caught:
        client.infer("churn", [*tensors[:6], wrong, tensors[7]])
    assert caught.value.message() == "input 'contract' has datatype 'FP32'; model 'churn' expects BYTES"


# --- BYTES inputs: JSON strings and the binary extension -----------------------------------
def _bytes_blob(values) -> bytes:
    """Triton's binary BYTES: each element a 4-byte little-endian length, then its UTF-8 bytes."""
    return b"".join(struct.pack("<I", len(v.encode())) + v.encode() for v in values)


def binary_bytes_body(tensors: dict[str, np.ndarray], blobs: dict[str, bytes] | None = None) -> tuple[bytes, int]:
    """A request whose FP32 inputs are JSON and whose BYTES inputs are binary (or `blobs`)."""
    entries, parts = [], []
    for item in request_inputs(tensors):
        if item["datatype"] == "BYTES":
            blob = (blobs or {}).get(item["name"], _bytes_blob(item["data"]))
            item = {**item, "parameters": {"binary_data_size": len(blob)}}
            del item["data"]
            parts.append(blob)
        entries.append(item)
    header = orjson.dumps({"inputs": entries})
    return header + b"".join(parts), len(header)


def test_bytes_inputs_as_json_strings_and_as_binary_answer_the_same(http, served):
    x = messy_inputs(4, seed=8)
    x["payment_method"][3, 0] = "carte bancaire \u00e0 d\u00e9bit"  # unseen, and not ASCII
    expected = ort_outputs(served.repo, "2", x)
    as_json = http.post("/v2/models/churn/infer", content=orjson.dumps(request(x)))
    assert as_json.status_code == 200, as_json.text
    assert_same(answer(as_json), expected)
    body, length = binary_bytes_body(x)
    as_binary = http.post("/v2/models/churn/infer", content=body, headers={"Inference-Header-Content-Length": str(length)})
    assert as_binary.status_code == 200, as_binary.text
    assert_same(answer(as_binary), expected)


def test_binary_bytes_errors(http):
    x = inputs(2, seed=3)
    cases = [
        (_bytes_blob(["one_year"]), "input 'contract': its binary data ends after 1 of 2 strings"),
        (struct.pack("<I", 50) + b"one_year", "input 'contract': string 0 claims 50 bytes, past the end of its data"),
        (_bytes_blob(["one_year", "two_year"]) + b"zz", "input 'contract': 2 bytes follow its 2 strings"),
        (_bytes_blob(["one_year"]) + struct.pack("<I", 2) + b"\xff\xfe", "input 'contract': string 1 is not UTF-8"),
    ]
    for blob, message in cases:
        body, length = binary_bytes_body(x, {"contract": blob})
        response = http.post("/v2/models/churn/infer", content=body, headers={"Inference-Header-Content-Length": str(length)})
        assert (response.status_code, response.json()["error"]) == (400, message)
    infer_ok(http)


# --- the row-oriented JSON form (curl) ------------------------------------------------------
def test_rows_as_json_objects_with_a_null_and_an_unseen_category(http, served):
    """curl's form: a list of rows keyed by column. A null (or absent) number is imputed
    with the training median, an unseen (or null) category encodes to no category; the
    answer carries the label."""
    pipeline = churn_pipeline()
    rows = [
        {"tenure_months": 3, "monthly_charges": 89.5, "total_charges": None, "support_calls": 4, "num_products": 1,
         "senior_citizen": 0, "contract": "weekly", "payment_method": "electronic_check"},
        {"tenure_months": 60, "monthly_charges": 25.0, "total_charges": 1500.0, "support_calls": 0, "num_products": 3,
         "senior_citizen": 1, "contract": "two_year", "payment_method": "bank_transfer"},
        {"tenure_months": 12},  # every other column absent: nulls
    ]
    response = http.post("/v2/models/churn/infer", json=rows)
    assert response.status_code == 200, response.text
    got = answer(response)
    assert got["probabilities"].shape == (3, 2) and got["label"].shape == (3, 1)
    assert set(got["label"].reshape(-1)) <= set(CLASSES)
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    assert_same(got, ort_outputs(served.repo, "2", pipeline.raw_inputs(frame)))
    # the null is the training median and the unseen category no category, as training encoded them
    filled = frame.copy()
    for name in pipeline.numeric:
        filled[name] = filled[name].fillna(pipeline.medians[name])
    filled["contract"] = filled["contract"].replace({"weekly": None})
    assert_same(got, ort_outputs(served.repo, "2", pipeline.raw_inputs(filled)))


def test_rows_reach_the_version_and_number_categories_are_text(http, served):
    rows = [{**dict.fromkeys(COLUMNS[:6], 1.5), "contract": 2, "payment_method": True}]  # numbers/bools: text
    response = http.post("/v2/models/churn/versions/1/infer", json=rows)
    assert response.status_code == 200, response.text
    assert response.json()["model_version"] == "1"
    tensors = {c: np.full((1, 1), 1.5, np.float32) for c in COLUMNS[:6]}
    tensors.update(contract=np.array([["2"]], dtype=object), payment_method=np.array([["true"]], dtype=object))
    assert_same(answer(response), ort_outputs(served.repo, "1", tensors))


# --- bad requests: a 4xx that says what to change, and the server keeps serving ------------
GOOD = request(inputs(1, seed=99))
ROW = {c: ("one_year" if c in CATEGORICAL else 1.0) for c in COLUMNS}
BAD_REQUESTS = {
    "malformed JSON": ("/v2/models/churn/infer", b'{"inputs": [', 400, r"malformed JSON in the request body: .+"),
    "not an object": ("/v2/models/churn/infer", b'"rows"', 400, re.escape(
        'the request body must be a JSON object: {"inputs": [{"name", "shape", "datatype", "data"}]}, '
        'or a JSON list of rows: [{"<column>": <value>, ...}]')),
    "no inputs": ("/v2/models/churn/infer", b"{}", 400, re.escape("the request has no 'inputs' list: send one entry per model input")),
    "unknown model": ("/v2/models/nope/infer", GOOD, 404, re.escape("unknown model 'nope'; this server serves: churn")),
    "unknown version": ("/v2/models/churn/versions/9/infer", GOOD, 404, re.escape("model 'churn' has no version '9' loaded; loaded versions: 1, 2")),
    "wrong input name": (
        "/v2/models/churn/infer", altered("tenure_months", name="tenure"), 400,
        re.escape(f"unknown input 'tenure' for model 'churn'; its inputs are: {NAMES}"),
    ),
    "missing input": (
        "/v2/models/churn/infer", without("payment_method"), 400,
        re.escape("missing input(s) payment_method for model 'churn'"),
    ),
    "wrong datatype": (
        "/v2/models/churn/infer", altered("tenure_months", datatype="FP64"), 400,
        re.escape("input 'tenure_months' has datatype 'FP64'; model 'churn' expects FP32"),
    ),
    "number for a category": (
        "/v2/models/churn/infer", altered("contract", datatype="FP32", data=[1.0]), 400,
        re.escape("input 'contract' has datatype 'FP32'; model 'churn' expects BYTES"),
    ),
    "BYTES data not strings": (
        "/v2/models/churn/infer", altered("contract", data=[1]), 400,
        re.escape("input 'contract' is BYTES: 'data' must hold only strings, in equal-length rows when nested"),
    ),
    "BYTES data length": (
        "/v2/models/churn/infer", altered("contract", data=["one_year", "two_year"]), 400,
        re.escape("input 'contract' has 2 values but its shape needs 1"),
    ),
    "wrong shape": (
        "/v2/models/churn/infer", altered("tenure_months", shape=[1, 2], data=[1.0, 2.0]), 400,
        re.escape("input 'tenure_months' has shape [1, 2]; model 'churn' expects [-1, 1] (-1: any size)"),
    ),
    "shape not integers": (
        "/v2/models/churn/infer", altered("tenure_months", shape=[1, "1"]), 400,
        re.escape("input 'tenure_months' needs a 'shape' list of integers, e.g. [1, 1]"),
    ),
    "data length": (
        "/v2/models/churn/infer", altered("tenure_months", shape=[1, 1], data=[1.0, 2.0]), 400,
        re.escape("input 'tenure_months' has 2 values but shape [1, 1] needs 1"),
    ),
    "rows differ between inputs": (
        "/v2/models/churn/infer", altered("contract", shape=[2, 1], data=["one_year", "two_year"]), 400,
        re.escape("input 'contract' has 2 rows but input 'tenure_months' has 1: every input needs one row per example"),
    ),
    "data not numbers": (
        "/v2/models/churn/infer", altered("tenure_months", data=["a"]), 400,
        re.escape("input 'tenure_months': 'data' must hold only numbers, in equal-length rows when nested"),
    ),
    "ragged rows": (
        "/v2/models/churn/infer", altered("tenure_months", rows=2, data=[[0.0], [0.0, 1.0]]), 400,
        re.escape("input 'tenure_months': 'data' must hold only numbers, in equal-length rows when nested"),
    ),
    "batch above max_batch_size": (
        "/v2/models/churn/infer", request(inputs(33)), 400,
        re.escape("input 'tenure_months' has batch size 33 but model 'churn' takes at most 32 rows (max_batch_size); split it into smaller requests"),
    ),
    "empty batch": (
        "/v2/models/churn/infer", altered("tenure_months", shape=[0, 1], data=[]), 400,
        re.escape("input 'tenure_months' has batch size 0; send at least one row"),
    ),
    "unknown output": (
        "/v2/models/churn/infer", {**GOOD, "outputs": [{"name": "probs"}]}, 400,
        re.escape("unknown output 'probs' for model 'churn'; its outputs are: probabilities, label"),
    ),
    "classification of text": (
        "/v2/models/churn/infer", {**GOOD, "outputs": [{"name": "label", "parameters": {"classification": 1}}]}, 400,
        re.escape("output 'label' is BYTES: the classification extension ranks numbers; ask it of a numeric output"),
    ),
    "input twice": (
        "/v2/models/churn/infer", {"inputs": GOOD["inputs"] * 2}, 400, re.escape("input 'tenure_months' is given twice"),
    ),
    "rows: not objects": ("/v2/models/churn/infer", b"[1, 2]", 400, re.escape(
        'each row must be a JSON object keyed by column, e.g. {"tenure_months": ...}')),
    "rows: none": ("/v2/models/churn/infer", b"[]", 400, re.escape("the list of rows is empty: send at least one row")),
    "rows: unknown column": (
        "/v2/models/churn/infer", [{**ROW, "tenure": 3}], 400,
        re.escape(f"unknown column 'tenure' for model 'churn'; its columns are: {NAMES}"),
    ),
    "rows: text for a number": (
        "/v2/models/churn/infer", [ROW, {**ROW, "tenure_months": "three"}], 400,
        re.escape("column 'tenure_months' is numeric (FP32); got 'three'"),
    ),
    "rows: a bool for a number": (
        "/v2/models/churn/infer", [{**ROW, "monthly_charges": True}], 400,
        re.escape("column 'monthly_charges' is numeric (FP32); got True"),
    ),
    "rows: above max_batch_size": (
        "/v2/models/churn/infer", [ROW] * 33, 400,
        re.escape("33 rows but model 'churn' takes at most 32 per request; split them"),
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
    """tenure_months (4 rows, 16 bytes of FP32) in binary, the other columns in JSON."""
    x = inputs(4, seed=2)
    entries = request_inputs(x)
    entries[0] = {"name": "tenure_months", "shape": [4, 1], "datatype": "FP32", "parameters": {"binary_data_size": 16}}
    header = orjson.dumps({"inputs": entries})
    data = x["tenure_months"].tobytes()
    short = header.replace(b'"binary_data_size":16', b'"binary_data_size":12')
    cases = [
        (header + data[:10], len(header), "input 'tenure_months' wants 16 bytes of binary data but only 10 follow the JSON header"),
        (header + data + b"xx", len(header), "2 bytes follow the JSON header that no input claims (binary_data_size)"),
        (header + data, len(header) + 1000, f"Inference-Header-Content-Length is {len(header) + 1000} but the body has {len(header) + 16} bytes"),
        (short + data[:12], len(short), "input 'tenure_months' has 12 bytes of binary data; shape [4, 1] of FP32 needs 16"),
        (orjson.dumps([{"tenure_months": 1}]) + data, len(orjson.dumps([{"tenure_months": 1}])),
         "a row-oriented request (a JSON list of rows) carries no binary data"),
    ]
    for body, length, message in cases:
        response = http.post("/v2/models/churn/infer", content=body, headers={"Inference-Header-Content-Length": str(length)})
        assert (response.status_code, response.json()["error"]) == (400, message)
    response = http.post("/v2/models/churn/infer", content=header + data, headers={"Inference-Header-Content-Length": str(len(header))})
    assert response.status_code == 200, response.text
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
    x = messy_inputs(3)
    body = gzip.compress(orjson.dumps(request(x)))
    response = http.post("/v2/models/churn/infer", content=body, headers={"Content-Encoding": "gzip"})
    assert response.status_code == 200
    assert_same(answer(response), ort_outputs(served.repo, "2", x))
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
    x = inputs(2)
    entries = [{**item, "data": np.asarray(item["data"], dtype=object).reshape(item["shape"]).tolist()}
               for item in request_inputs(x)]
    assert entries[0]["data"] == [[float(v)] for v in x["tenure_months"][:, 0]]  # nested by shape
    body = {"inputs": entries, "parameters": {"binary_data_output": True}}
    response = http.post("/v2/models/churn/infer", content=orjson.dumps(body))
    length = int(response.headers["inference-header-content-length"])
    header = orjson.loads(response.content[:length])
    expected = ort_outputs(served.repo, "2", x)
    labels = [str(v) for v in expected["label"].reshape(-1)]
    assert [o["parameters"] for o in header["outputs"]] == [
        {"binary_data_size": 16}, {"binary_data_size": sum(4 + len(v) for v in labels)},
    ]
    blob = response.content[length:]
    got = np.frombuffer(blob[:16], dtype="<f4").reshape(2, 2)
    np.testing.assert_allclose(got, expected["probabilities"], rtol=1e-6)
    assert blob[16:] == _bytes_blob(labels)


# --- metrics and the request log ------------------------------------------------------
def test_metrics_names_and_labels(http):
    from framework.contracts.metrics import APP_METRICS

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
    """One row per example: the raw columns as sent (numbers as floats with NaN for a
    null, categories as text), the probabilities and the label."""
    x = messy_inputs(3, seed=7)
    before = time.time()
    response = http.post("/v2/models/churn/versions/1/infer", content=orjson.dumps(request(x)))
    assert response.status_code == 200
    served.app.request_log.flush()
    folder = served.state / "requests" / "churn"
    frame = pd.read_parquet(folder)
    from framework.signature import model_signature

    columns = list(model_signature(served.recipe).columns)
    assert columns == list(COLUMNS)
    assert list(frame.columns) == ["timestamp", "model", "version", "latency_ms", *columns, "probabilities_0", "probabilities_1", "label"]
    mine = frame[(frame["version"] == "1") & (frame["timestamp"] >= pd.Timestamp(before, unit="s", tz="UTC").floor("ms"))]
    mine = mine[mine["monthly_charges"].isin(x["monthly_charges"][:, 0])]
    assert len(mine) == 3
    mine = mine.set_index(mine["monthly_charges"].map({v: i for i, v in enumerate(x["monthly_charges"][:, 0])})).sort_index()
    numeric = [c for c in columns if c not in CATEGORICAL]
    np.testing.assert_allclose(mine[numeric].to_numpy(dtype=np.float64), np.hstack([x[c] for c in numeric]), rtol=1e-6)
    assert np.isnan(mine["total_charges"].iloc[0])  # the null as sent, not the imputed value
    for name in CATEGORICAL:
        assert mine[name].tolist() == x[name][:, 0].tolist()
    assert mine["contract"].iloc[1] == "" and mine["payment_method"].iloc[0] == "crypto"
    expected = ort_outputs(served.repo, "1", x)
    np.testing.assert_allclose(mine[["probabilities_0", "probabilities_1"]].to_numpy(), expected["probabilities"], rtol=1e-6)
    assert mine["label"].tolist() == expected["label"][:, 0].tolist()
    assert (mine["model"] == "churn").all() and (mine["latency_ms"] > 0).all()
    assert str(frame["timestamp"].dtype) == "datetime64[us, UTC]"
    assert not list(folder.glob(".*"))  # no half-written file left
