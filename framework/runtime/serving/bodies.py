"""Request bodies of the serving app: the binary extension's JSON-header length, the size
limit, and gzip/deflate bodies inflated no further than that limit."""

from __future__ import annotations

import zlib

from framework.runtime.serving.protocol import HttpError


def parse_header_length(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        raise HttpError(400, f"Inference-Header-Content-Length must be an integer, got {value!r}") from None


def too_large(size: int, limit: int) -> str:
    return f"request body of {size} bytes exceeds the limit of {limit} bytes; send fewer rows per request"


def decompress(body: bytes, encoding: str, limit: int) -> bytes:
    wbits = {"gzip": 31, "deflate": 15}.get(encoding)
    if wbits is None:
        raise HttpError(415, f"unsupported Content-Encoding {encoding!r}; use gzip, deflate or none")
    decoder = zlib.decompressobj(wbits)
    try:
        out = decoder.decompress(body, limit + 1)
    except zlib.error as exc:
        raise HttpError(400, f"the body is not valid {encoding} data: {exc}") from None
    if len(out) > limit or decoder.unconsumed_tail:
        raise HttpError(413, f"the {encoding} body inflates past the limit of {limit} bytes; send fewer rows per request")
    return out
