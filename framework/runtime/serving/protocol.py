"""KServe v2 inference requests and responses, JSON and Triton's binary tensor extension.

A request body is a JSON header, optionally followed by the raw bytes of the inputs that
set `parameters.binary_data_size` (in input order); the header's length then comes in
the `Inference-Header-Content-Length` HTTP header. Responses mirror it: an output is
sent as bytes when its request entry says `parameters.binary_data: true`, or when the
request sets `parameters.binary_data_output: true` (what tritonclient.http does when no
outputs are named). The classification extension (`parameters.classification: k`)
returns the top k of an output as "score:index" strings. BYTES tensors travel as JSON
strings or, in binary, as 4-byte little-endian lengths each followed by UTF-8 bytes; in
memory they are numpy object arrays of str (what ONNX Runtime's string tensors take).

A body that is a JSON list is the row-oriented form for curl users: one object per
example keyed by the model's one-value-wide inputs (`[{"tenure_months": 3, "contract":
"one_year"}]`); the answer is the usual KServe v2 response.

Everything a client can get wrong raises `HttpError` (a 4xx) whose message says what
to change. The hot path builds no model objects: orjson in, numpy, orjson out. The
common JSON request is checked in one pass and keeps its `data` lists (tensors.py
JsonColumns): the batcher builds one array per input for a whole batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from framework.contracts.triton import ModelConfig
from framework.runtime.serving.repository import NUMPY_DTYPES
from framework.runtime.serving.tensors import (
    TEXT, HttpError, JsonColumns, bytes_elements, bytes_tensor, classify, json_tensor, json_text, text_values,
)
from framework.runtime.serving.tensors import shape_text as _shape_text

_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


@dataclass(slots=True)
class RequestedOutput:
    name: str
    binary: bool
    classification: int = 0


class InferRequest:
    """A decoded request. `inputs`: {name: array}; a JSON request whose inputs passed the
    shape checks keeps them as `JsonColumns` until someone reads `inputs` (the batcher
    takes `batch_inputs` and builds the arrays of a whole batch at once)."""

    __slots__ = ("id", "_inputs", "rows", "outputs")

    def __init__(self, id: str | None, inputs: dict[str, np.ndarray] | JsonColumns, rows: int,
                 outputs: list[RequestedOutput]):
        self.id = id
        self._inputs = inputs
        self.rows = rows  # the batch dimension (1 without batching)
        self.outputs = outputs

    @property
    def inputs(self) -> dict[str, np.ndarray]:
        if type(self._inputs) is JsonColumns:
            self._inputs = self._inputs.arrays()
        return self._inputs

    @inputs.setter
    def inputs(self, value: dict[str, np.ndarray]) -> None:
        self._inputs = value

    @property
    def batch_inputs(self) -> dict[str, np.ndarray] | JsonColumns:
        return self._inputs

    def has_input(self, name: str) -> bool:
        return name in self._inputs


class _InputPlan:
    """What checking one input needs, computed once per model config."""

    __slots__ = ("spec", "full", "tail", "dtype", "per_row")

    def __init__(self, config: ModelConfig, spec):
        self.spec = spec
        self.full = config.full_shape(spec)
        tail = self.full[1:] if config.batching else None
        self.tail = tail if tail is not None and -1 not in tail else None  # fixed row shape: the fast path
        self.dtype = TEXT if spec.datatype == "BYTES" else NUMPY_DTYPES.get(spec.datatype)
        self.per_row = 1
        for d in tail or ():
            self.per_row *= d


class _Plan:
    __slots__ = ("config", "inputs", "names", "default_outputs", "specs", "fast", "output_types")

    def __init__(self, config: ModelConfig):
        self.config = config
        self.inputs = {t.name: _InputPlan(config, t) for t in config.input}
        # the deferred JSON form's per-input (dtype, row shape), when every input has a fixed row shape
        fixed = all(p.tail is not None and p.dtype is not None for p in self.inputs.values())
        self.specs = {name: (p.dtype, list(p.tail)) for name, p in self.inputs.items()} if fixed else None
        self.fast = {name: (p.spec.datatype, p.tail, len(p.full), p.per_row) for name, p in self.inputs.items()}
        self.names = ", ".join(self.inputs)
        names = [t.name for t in config.output]
        self.default_outputs = {b: [RequestedOutput(n, b) for n in names] for b in (False, True)}
        self.output_types = {t.name: t.datatype for t in config.output}


_PLANS: dict[int, _Plan] = {}


def _plan(config: ModelConfig) -> _Plan:
    plan = _PLANS.get(id(config))
    if plan is None or plan.config is not config:
        plan = _PLANS[id(config)] = _Plan(config)
    return plan


def _names_entity(request, key: str) -> bool:
    if type(request) is list:
        return bool(request) and type(request[0]) is dict and key in request[0]
    items = request.get("inputs") if type(request) is dict else None
    return type(items) is list and bool(items) and type(items[0]) is dict and items[0].get("name") == key


def decode_request(body: bytes, header_length: int | None, config: ModelConfig, model: str,
                   by_entity: ModelConfig | None = None) -> InferRequest:
    """Parse and check an infer request against the model's config, or against
    `by_entity` (a request carrying entity ids, looked up in a feature store) when its
    first input is that config's one input."""
    if header_length is not None:
        if header_length < 0 or header_length > len(body):
            raise HttpError(400, f"Inference-Header-Content-Length is {header_length} but the body has {len(body)} bytes")
        header, binary = body[:header_length], memoryview(body)[header_length:]
    else:
        header, binary = body, memoryview(b"")
    try:
        request = orjson.loads(header)
    except orjson.JSONDecodeError as exc:
        raise HttpError(400, f"malformed JSON in the request body: {exc}") from None
    if by_entity is not None and _names_entity(request, by_entity.input[0].name):
        config = by_entity
    if type(request) is list:
        if header_length is not None:
            raise HttpError(400, "a row-oriented request (a JSON list of rows) carries no binary data")
        return _decode_rows(request, config, model)
    if type(request) is not dict:
        raise HttpError(400, 'the request body must be a JSON object: {"inputs": [{"name", "shape", "datatype", "data"}]}, '
                             'or a JSON list of rows: [{"<column>": <value>, ...}]')
    items = request.get("inputs")
    if type(items) is not list or not items:
        raise HttpError(400, "the request has no 'inputs' list: send one entry per model input")
    plan = _plan(config)
    fast = _json_columns(items, plan, config.max_batch_size) if plan.specs is not None and not binary else None
    if fast is not None:
        request_id = request.get("id")
        return InferRequest(None if request_id is None else str(request_id), fast, fast.rows,
                            _requested_outputs(request, config, model, plan))
    inputs: dict[str, np.ndarray] = {}
    offset = 0
    rows = 1
    first = None  # (input name, rows) of the first input: every input carries the same examples
    for item in items:
        if type(item) is not dict:
            raise HttpError(400, "each entry of 'inputs' must be an object with name, shape, datatype and data")
        name = item.get("name")
        expected = plan.inputs.get(name) if type(name) is str else None
        if expected is None:
            raise HttpError(400, f"unknown input {name!r} for model '{model}'; its inputs are: {plan.names}")
        if name in inputs:
            raise HttpError(400, f"input '{name}' is given twice")
        spec = expected.spec
        datatype = item.get("datatype")
        if datatype != spec.datatype:
            raise HttpError(400, f"input '{name}' has datatype {datatype!r}; model '{model}' expects {spec.datatype}")
        shape = item.get("shape")
        tail = expected.tail
        if (
            tail is not None and type(shape) is list and len(shape) == len(expected.full) and shape[1:] == tail
            and type(shape[0]) is int and 0 < shape[0] <= config.max_batch_size
        ):
            rows = shape[0]  # the common case, checked in one comparison
            shape = [rows, *tail]
            count = rows * expected.per_row
        else:
            rows, count = _check_shape(shape, expected, config, name, model)
        if first is None:
            first = (name, rows)
        elif rows != first[1]:
            raise HttpError(
                400, f"input '{name}' has {rows} rows but input '{first[0]}' has {first[1]}: every input needs one row per example"
            )
        dtype = expected.dtype
        if dtype is None:
            raise HttpError(400, f"input '{name}': datatype {datatype} is not supported by this server")
        parameters = item.get("parameters")
        size = parameters.get("binary_data_size") if type(parameters) is dict else None
        if dtype is TEXT:
            if size is not None:
                if type(size) is not int or size < 0 or offset + size > len(binary):
                    raise HttpError(400, f"input '{name}': binary_data_size {size!r} does not fit the {len(binary) - offset} bytes after the JSON header")
                array = bytes_elements(binary[offset : offset + size], count, name)
                offset += size
            else:
                array = json_text(item.get("data"), name, count)
            inputs[name] = array.reshape(shape)
            continue
        if size is not None:
            if type(size) is not int or size < 0:
                raise HttpError(400, f"input '{name}': binary_data_size must be a non-negative integer")
            if size != count * dtype.itemsize:
                raise HttpError(
                    400, f"input '{name}' has {size} bytes of binary data; shape {_shape_text(shape)} of {datatype} "
                    f"needs {count * dtype.itemsize}",
                )
            if offset + size > len(binary):
                raise HttpError(400, f"input '{name}' wants {size} bytes of binary data but only {len(binary) - offset} follow the JSON header")
            array = np.frombuffer(binary[offset : offset + size], dtype=dtype).reshape(shape)
            offset += size
        else:
            if "data" not in item:
                raise HttpError(400, f"input '{name}' has no 'data' (nor binary_data_size)")
            array = json_tensor(item["data"], dtype, name)
            if array.size != count:
                raise HttpError(
                    400, f"input '{name}' has {array.size} values but shape {_shape_text(shape)} needs {count}"
                )
            array = array.reshape(shape)
        inputs[name] = array
    if offset != len(binary):
        raise HttpError(400, f"{len(binary) - offset} bytes follow the JSON header that no input claims (binary_data_size)")
    if len(inputs) != len(plan.inputs):
        missing = [n for n in plan.inputs if n not in inputs]
        raise HttpError(400, f"missing input(s) {', '.join(missing)} for model '{model}'")
    request_id = request.get("id")
    return InferRequest(
        str(request_id) if request_id is not None else None,
        inputs,
        rows,
        _requested_outputs(request, config, model, plan),
    )


def _json_columns(items: list, plan: _Plan, max_rows: int) -> JsonColumns | None:
    """The common request, checked but for its elements' types: every input once, each
    with the model's datatype, a [rows, *row shape] shape and a flat `data` list of the
    size that needs; None for anything else (decode_request's full path then says what)."""
    lists: dict[str, list] = {}
    fast = plan.fast
    rows = 0
    try:
        for item in items:
            name = item["name"]
            datatype, tail, ndim, per_row = fast[name]
            shape, data = item["shape"], item["data"]
            if (
                item["datatype"] != datatype or name in lists or "parameters" in item or type(shape) is not list
                or len(shape) != ndim or shape[1:] != tail or type(data) is not list
            ):
                return None
            count = shape[0]
            if type(count) is not int or not 0 < count <= max_rows or (rows and count != rows):
                return None
            rows = count
            if len(data) != count * per_row or type(data[0]) is list:
                return None
            lists[name] = data
    except (KeyError, TypeError, IndexError):  # not a dict, a name it does not know, a field missing
        return None
    return JsonColumns(lists, rows, plan.specs) if len(lists) == len(fast) else None


def _check_shape(shape: Any, expected: _InputPlan, config: ModelConfig, name: str, model: str) -> tuple[int, int]:
    """The general shape check (and its error messages): (rows, element count)."""
    full = expected.full
    if type(shape) is not list or not all(type(d) is int for d in shape):
        raise HttpError(400, f"input '{name}' needs a 'shape' list of integers, e.g. {_shape_text(_example(config, expected.spec))}")
    if len(shape) != len(full) or any(e != -1 and d != e for d, e in zip(shape, full)) or any(d < 0 for d in shape):
        raise HttpError(
            400, f"input '{name}' has shape {_shape_text(shape)}; model '{model}' expects {_shape_text(full)} (-1: any size)"
        )
    rows = 1
    if config.batching:
        if shape[0] < 1:
            raise HttpError(400, f"input '{name}' has batch size {shape[0]}; send at least one row")
        if shape[0] > config.max_batch_size:
            raise HttpError(
                400,
                f"input '{name}' has batch size {shape[0]} but model '{model}' takes at most "
                f"{config.max_batch_size} rows (max_batch_size); split it into smaller requests",
            )
        rows = shape[0]
    count = 1
    for d in shape:
        count *= d
    return rows, count


def _example(config: ModelConfig, spec) -> list[int]:
    return [1 if d == -1 else d for d in config.full_shape(spec)]


def _decode_rows(rows: list, config: ModelConfig, model: str) -> InferRequest:
    """The row-oriented form for people using curl: [{"<column>": value, ...}, ...], one
    object per example, keyed by the model's inputs (each one value wide). A null or a
    missing numeric value is NaN (the model imputes it); a category may be any JSON
    scalar and is sent as its text ("" for null)."""
    plan = _plan(config)
    if not rows:
        raise HttpError(400, "the list of rows is empty: send at least one row")
    if any(type(row) is not dict for row in rows):
        raise HttpError(400, 'each row must be a JSON object keyed by column, e.g. {"' + next(iter(plan.inputs)) + '": ...}')
    if not config.batching and len(rows) != 1:
        raise HttpError(400, f"model '{model}' takes one row per request (max_batch_size 0); got {len(rows)}")
    if len(rows) > max(config.max_batch_size, 1):
        raise HttpError(400, f"{len(rows)} rows but model '{model}' takes at most {config.max_batch_size} per request; split them")
    known = plan.inputs
    for row in rows:
        unknown = [key for key in row if key not in known]
        if unknown:
            raise HttpError(400, f"unknown column {unknown[0]!r} for model '{model}'; its columns are: {plan.names}")
    inputs: dict[str, np.ndarray] = {}
    for name, expected in known.items():
        if expected.per_row != 1:
            raise HttpError(400, f"model '{model}' takes tensors (input '{name}' is {expected.per_row} values wide); use the KServe v2 form")
        shape = [len(rows), 1] if config.batching else list(expected.full)
        if expected.dtype is TEXT:
            values = [_category_text(row.get(name)) for row in rows]
            inputs[name] = np.array(values, dtype=object).reshape(shape)
            continue
        values = [row.get(name) for row in rows]
        if any(v is not None and (type(v) not in (int, float)) for v in values):
            bad = next(v for v in values if v is not None and type(v) not in (int, float))
            raise HttpError(400, f"column '{name}' is numeric ({expected.spec.datatype}); got {bad!r}")
        array = np.array([np.nan if v is None else v for v in values], dtype=expected.dtype)
        inputs[name] = array.reshape(shape)
    return InferRequest(None, inputs, len(rows) if config.batching else 1, plan.default_outputs[False])


def _category_text(value: Any) -> str:
    """A JSON scalar as the category text the model compares (features.category_key)."""
    if value is None:
        return ""
    if type(value) is bool:
        return "true" if value else "false"
    if type(value) is float and value.is_integer():
        return str(int(value))
    return str(value)


def _requested_outputs(request: dict, config: ModelConfig, model: str, plan: _Plan) -> list[RequestedOutput]:
    parameters = request.get("parameters")
    binary_default = bool(parameters.get("binary_data_output", False)) if type(parameters) is dict else False
    items = request.get("outputs")
    if items is None:
        return plan.default_outputs[binary_default]  # shared, never mutated
    names = [t.name for t in config.output]
    if not isinstance(items, list):
        raise HttpError(400, "'outputs' must be a list of {\"name\": ...} objects")
    outputs = []
    for item in items:
        name = item.get("name") if isinstance(item, dict) else None
        if name not in names:
            raise HttpError(400, f"unknown output {name!r} for model '{model}'; its outputs are: {', '.join(names)}")
        params = item.get("parameters") or {}
        if not isinstance(params, dict):
            raise HttpError(400, f"output '{name}': 'parameters' must be an object")
        classification = params.get("classification", 0)
        if type(classification) is not int or classification < 0:
            raise HttpError(400, f"output '{name}': classification must be a non-negative integer (top k)")
        if classification and next(t for t in config.output if t.name == name).datatype == "BYTES":
            raise HttpError(400, f"output '{name}' is BYTES: the classification extension ranks numbers; ask it of a numeric output")
        outputs.append(RequestedOutput(name, bool(params.get("binary_data", binary_default)), classification))
    return outputs


def encode_response(
    model: str, version: str, request: InferRequest, outputs: dict[str, np.ndarray], config: ModelConfig
) -> tuple[bytes, int | None]:
    """(body, JSON header length when binary outputs follow it)."""
    datatypes = _plan(config).output_types
    entries, blobs = [], []
    for wanted in request.outputs:
        array = outputs[wanted.name]
        datatype = datatypes[wanted.name]
        if wanted.classification:
            array, datatype = classify(array, wanted.classification), "BYTES"
        entry: dict[str, Any] = {"name": wanted.name, "datatype": datatype, "shape": list(array.shape)}
        if wanted.binary:
            blob = bytes_tensor(array) if datatype == "BYTES" else np.ascontiguousarray(array).tobytes()
            entry["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        elif datatype == "BYTES":
            entry["data"] = text_values(array)
        else:
            entry["data"] = array.reshape(-1)  # C-contiguous (a copy when it was not), as orjson wants
        entries.append(entry)
    response: dict[str, Any] = {"model_name": model, "model_version": version, "outputs": entries}
    if request.id is not None:
        response["id"] = request.id
    header = orjson.dumps(response, option=_JSON_OPTIONS)
    if not blobs:
        return header, None
    return b"".join((header, *blobs)), len(header)


def request_inputs(inputs: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """A client's side: the JSON `inputs` entries of request tensors ({name: [rows, ...]}):
    text (object) arrays as BYTES, numbers as FP32 with NaN sent as null."""
    entries = []
    for name, array in inputs.items():
        if array.dtype == object:
            data: list = [str(v) for v in array.reshape(-1)]
            datatype = "BYTES"
        else:
            flat = np.asarray(array, dtype=np.float32).reshape(-1)
            data = [None if v != v else v for v in flat.tolist()]  # v != v: NaN, which JSON cannot carry
            datatype = "FP32"
        entries.append({"name": name, "shape": list(array.shape), "datatype": datatype, "data": data})
    return entries


def take_rows(inputs: dict[str, np.ndarray], rows) -> dict[str, np.ndarray]:
    """The same rows of every request tensor."""
    return {name: array[rows] for name, array in inputs.items()}


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=_JSON_OPTIONS)


def loads(body: bytes) -> Any:
    return orjson.loads(body)
