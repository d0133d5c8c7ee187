"""Request tensors from a KServe v2 body's JSON `data` lists and binary blobs, and the
deferred form of the common request (protocol.decode_request's fast path).

`JsonColumns`: the inputs of a JSON request whose shapes and element counts checked out,
kept as the flat lists JSON gave. Building numpy arrays costs more per request than the
rest of its decoding, so the batcher builds them once per batch (`JsonColumns.stack`: one
array per input for every request of the batch); `arrays()` builds one request's, with the
element checks and their messages. A batch with a bad element falls back to `arrays()` per
request, so only the request that sent it fails.
"""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

TEXT = np.dtype(object)  # BYTES tensors hold Python str (the models' string tensors take str)


class HttpError(Exception):
    """A request the server refuses: the status and an actionable message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


def shape_text(shape) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def json_tensor(data: Any, dtype: np.dtype, name: str) -> np.ndarray:
    if not isinstance(data, list):
        raise HttpError(400, f"input '{name}': 'data' must be a list of numbers (flat or nested by shape)")
    try:
        array = np.array(data, dtype=dtype)  # null -> NaN for floats (a missing value the model imputes)
    except (ValueError, TypeError):
        raise HttpError(400, f"input '{name}': 'data' must hold only numbers, in equal-length rows when nested") from None
    return array.reshape(-1)


def json_text(data: Any, name: str, count: int) -> np.ndarray:
    """A BYTES input in JSON: a (flat or nested) list of strings."""
    if not isinstance(data, list):
        raise HttpError(400, f"input '{name}': 'data' must be a list of strings (BYTES)")
    flat = np.array(data, dtype=object).reshape(-1) if data and isinstance(data[0], list) else np.array(data, dtype=object)
    if flat.ndim != 1 or any(type(v) is not str for v in flat):
        raise HttpError(400, f"input '{name}' is BYTES: 'data' must hold only strings, in equal-length rows when nested")
    if flat.size != count:
        raise HttpError(400, f"input '{name}' has {flat.size} values but its shape needs {count}")
    return flat


def bytes_elements(blob: memoryview, count: int, name: str) -> np.ndarray:
    """BYTES in the binary extension: each element a 4-byte little-endian length, then its bytes."""
    out = np.empty(count, dtype=object)
    position = 0
    for index in range(count):
        if position + 4 > len(blob):
            raise HttpError(400, f"input '{name}': its binary data ends after {index} of {count} strings")
        (length,) = struct.unpack_from("<I", blob, position)
        position += 4
        if position + length > len(blob):
            raise HttpError(400, f"input '{name}': string {index} claims {length} bytes, past the end of its data")
        try:
            out[index] = bytes(blob[position : position + length]).decode("utf-8")
        except UnicodeDecodeError:
            raise HttpError(400, f"input '{name}': string {index} is not UTF-8") from None
        position += length
    if position != len(blob):
        raise HttpError(400, f"input '{name}': {len(blob) - position} bytes follow its {count} strings")
    return out


def classify(array: np.ndarray, k: int) -> np.ndarray:
    """Triton's classification extension: the top k of each row as "score:index"."""
    rows = array.reshape(array.shape[0], -1) if array.ndim > 1 else array.reshape(1, -1)
    k = min(k, rows.shape[1])
    top = np.argsort(-rows, axis=1, kind="stable")[:, :k]
    labels = [[f"{rows[r, i]:f}:{i}".encode() for i in row] for r, row in enumerate(top)]
    shape = (array.shape[0], k) if array.ndim > 1 else (k,)
    return np.array(labels, dtype=object).reshape(shape)


def bytes_tensor(array: np.ndarray) -> bytes:
    """BYTES in the binary extension: each element as a 4-byte little-endian length, then its bytes."""
    encoded = (v if type(v) is bytes else str(v).encode() for v in array.reshape(-1))
    return b"".join(struct.pack("<I", len(v)) + v for v in encoded)


def text_values(array: np.ndarray) -> list[str]:
    """A BYTES output's values as JSON strings (the models give str; bytes are decoded)."""
    values = array.reshape(-1).tolist()
    for value in values:
        if type(value) is not str:
            return [v.decode() if type(v) is bytes else str(v) for v in values]
    return values


class JsonColumns:
    """One request's inputs as flat JSON lists, `rows` examples each, every input of the
    model present with the element count its shape needs. `specs`: the model's inputs,
    {name: (dtype, row shape)}, one object per model config (the batch check)."""

    __slots__ = ("lists", "rows", "specs")

    def __init__(self, lists: dict[str, list], rows: int, specs: dict[str, tuple[np.dtype, list[int]]]):
        self.lists = lists
        self.rows = rows
        self.specs = specs

    def __contains__(self, name: str) -> bool:
        return name in self.lists

    def arrays(self) -> dict[str, np.ndarray]:
        """This request's arrays; HttpError for an element of the wrong type."""
        out = {}
        for name, (dtype, tail) in self.specs.items():
            data = self.lists[name]
            array = json_text(data, name, len(data)) if dtype is TEXT else json_tensor(data, dtype, name)
            out[name] = array.reshape(self.rows, *tail)
        return out

    @staticmethod
    def stack(parts: list[JsonColumns]) -> dict[str, np.ndarray] | None:
        """One array per input holding every part's rows in order; None when the parts
        are of different models or an element is of the wrong type (`arrays` says which)."""
        specs = parts[0].specs
        rows = 0
        for part in parts:
            if part.specs is not specs:
                return None
            rows += part.rows
        out = {}
        for name, (dtype, tail) in specs.items():
            flat: list = []
            for part in parts:
                flat += part.lists[name]
            if dtype is TEXT:
                for value in flat:
                    if type(value) is not str:
                        return None
                array = np.array(flat, dtype=object)
            else:
                try:
                    array = np.array(flat, dtype=dtype)
                except (ValueError, TypeError):
                    return None
            if array.ndim != 1:  # a nested list among the elements
                return None
            out[name] = array.reshape(rows, *tail)
        return out


__all__ = ["HttpError", "TEXT", "JsonColumns", "json_tensor", "json_text", "bytes_elements", "shape_text", "classify",
           "bytes_tensor", "text_values"]
