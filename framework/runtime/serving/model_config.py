"""Triton's `config.pbtxt` without protobuf: a small parser of the text format and the
part of `ModelConfig` the serving app acts on.

The product must run without Triton's Python packages, so this parses the protobuf text
format itself (the subset config files use: `field: scalar`, `field: [a, b]`,
`field { ... }`, `field [ {...}, {...} ]`, `#` comments, quoted strings with C escapes)
and checks the fields against a schema of `model_config.proto`: an unknown field, a
scalar of the wrong kind, or a non-repeated field given twice is an error naming the
file and line, as protobuf's strict `text_format.Parse` would refuse it. Messages the
app does not act on (optimization, parameters, ...) are accepted unchecked.
A test parses every generated config.pbtxt with both this and Triton's own proto.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from framework.errors import Location, MlopsError, Problem

# --- tokens ----------------------------------------------------------------------------
_TOKEN = re.compile(
    r"""
    (?P<space>\s+|\#[^\n]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<number>[-+]?(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)[fF]?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>[{}\[\]<>:,;])
    """,
    re.VERBOSE,
)
_SIMPLE_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "'": "'", "\\": "\\", "a": "\a", "b": "\b", "f": "\f", "v": "\v", "?": "?"}


class ConfigError(MlopsError):
    """A config.pbtxt that is not a valid model configuration."""


class Ident(str):
    """An unquoted identifier: an enum value, `true` or `false`."""


@dataclass
class _Token:
    kind: str
    text: str
    line: int


def _unescape(body: str) -> str:
    out = bytearray()
    i = 0
    while i < len(body):
        char = body[i]
        if char != "\\":
            out += char.encode("utf-8")
            i += 1
            continue
        nxt = body[i + 1]
        if nxt in _SIMPLE_ESCAPES:
            out += _SIMPLE_ESCAPES[nxt].encode()
            i += 2
        elif nxt in "01234567":
            digits = re.match(r"[0-7]{1,3}", body[i + 1 :]).group()
            out.append(int(digits, 8) & 0xFF)
            i += 1 + len(digits)
        elif nxt in "xX":
            digits = re.match(r"[0-9a-fA-F]{1,2}", body[i + 2 :])
            if not digits:
                raise ValueError("\\x without hex digits")
            out.append(int(digits.group(), 16))
            i += 2 + len(digits.group())
        else:
            raise ValueError(f"unknown escape \\{nxt}")
    return out.decode("utf-8")


def _tokens(text: str, where: str) -> list[_Token]:
    tokens, pos, line = [], 0, 1
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            raise ConfigError([Problem(Location(where, line), "", f"unexpected character {text[pos]!r}")])
        kind = match.lastgroup
        if kind != "space":
            tokens.append(_Token(kind, match.group(), line))
        line += match.group().count("\n")
        pos = match.end()
    return tokens


# --- generic parse: {field: [values]} ----------------------------------------------------
class _Parser:
    def __init__(self, text: str, where: str):
        self.where = where
        self.tokens = _tokens(text, where)
        self.i = 0

    def error(self, message: str, token: _Token | None = None) -> ConfigError:
        token = token or (self.tokens[self.i] if self.i < len(self.tokens) else None)
        line = token.line if token else (self.tokens[-1].line if self.tokens else 1)
        return ConfigError([Problem(Location(self.where, line), "", message)])

    def peek(self) -> _Token | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, text: str | None = None) -> _Token:
        token = self.peek()
        if token is None:
            raise self.error(f"unexpected end of file{f', expected {text!r}' if text else ''}")
        if text is not None and token.text != text:
            raise self.error(f"expected {text!r}, got {token.text!r}")
        self.i += 1
        return token

    def message(self, close: str | None) -> dict[str, list[Any]]:
        fields: dict[str, list[Any]] = {}
        lines: dict[str, int] = {}
        while True:
            token = self.peek()
            if token is None:
                if close is not None:
                    raise self.error(f"unexpected end of file, expected {close!r}")
                break
            if close is not None and token.text == close:
                self.i += 1
                break
            if token.kind != "ident":
                raise self.error(f"expected a field name, got {token.text!r}")
            self.i += 1
            values = self.field_values()
            fields.setdefault(token.text, []).extend(values)
            lines.setdefault(token.text, token.line)
            nxt = self.peek()
            if nxt is not None and nxt.text in (",", ";"):
                self.i += 1
        fields["__lines__"] = [lines]  # type: ignore[list-item]
        return fields

    def field_values(self) -> list[Any]:
        colon = self.peek() is not None and self.peek().text == ":"
        if colon:
            self.i += 1
        token = self.peek()
        if token is None:
            raise self.error("unexpected end of file after a field name")
        if token.text == "[":
            self.i += 1
            values: list[Any] = []
            if self.peek() is not None and self.peek().text == "]":
                self.i += 1
                return values
            while True:
                values.append(self.value(colon_seen=True))
                sep = self.take()
                if sep.text == "]":
                    return values
                if sep.text != ",":
                    raise self.error(f"expected ',' or ']', got {sep.text!r}", sep)
        if token.text in ("{", "<"):
            return [self.value(colon_seen=True)]
        if not colon:
            raise self.error(f"expected ':' or '{{' after the field name, got {token.text!r}")
        return [self.value(colon_seen=True)]

    def value(self, colon_seen: bool) -> Any:
        token = self.take()
        if token.text in ("{", "<"):
            return self.message("}" if token.text == "{" else ">")
        if token.kind == "string":
            parts = [token]
            while self.peek() is not None and self.peek().kind == "string":  # "a" "b" concatenates
                parts.append(self.take())
            try:
                return "".join(_unescape(t.text[1:-1]) for t in parts)
            except (ValueError, UnicodeDecodeError) as exc:
                raise self.error(f"bad string literal: {exc}", token) from None
        if token.kind == "number":
            text = token.text
            try:
                if re.fullmatch(r"[-+]?0[xX][0-9a-fA-F]+", text):
                    return int(text, 16)
                if re.fullmatch(r"[-+]?\d+", text):
                    return int(text, 10)
                return float(text.rstrip("fF"))
            except ValueError:
                raise self.error(f"bad number {token.text!r}", token) from None
        if token.kind == "ident":
            return Ident(token.text)
        raise self.error(f"expected a value, got {token.text!r}", token)


def parse_text(text: str, where: str = "config.pbtxt") -> dict[str, list[Any]]:
    """The generic tree of a protobuf text-format message: {field: [values]}."""
    return _Parser(text, where).message(None)


# --- the ModelConfig schema (model_config.proto, the parts we check) --------------------
# kind: "string" | "int" | "float" | "bool" | "enum:<prefix>" | "any" (a message, unchecked)
# | a nested schema dict. Fields ending in [] are repeated.
_DIMS = {"dims[]": "int"}
_TENSOR_IN = {
    "name": "string", "data_type": "enum:TYPE_", "format": "enum:FORMAT_", "dims[]": "int", "reshape": {"shape[]": "int"},
    "is_shape_tensor": "bool", "allow_ragged_batch": "bool", "optional": "bool", "is_non_linear_format_io": "bool",
}
_TENSOR_OUT = {
    "name": "string", "data_type": "enum:TYPE_", "dims[]": "int", "reshape": {"shape[]": "int"}, "label_filename": "string",
    "is_shape_tensor": "bool", "is_non_linear_format_io": "bool",
}
_WARMUP_INPUT = {
    "data_type": "enum:TYPE_", "dims[]": "int", "zero_data": "bool", "random_data": "bool", "input_data_file": "string",
}
_SCHEMA: dict[str, Any] = {
    "name": "string", "platform": "string", "backend": "string", "runtime": "string",
    "version_policy": {"latest": {"num_versions": "int"}, "all": {}, "specific": {"versions[]": "int"}},
    "max_batch_size": "int",
    "input[]": _TENSOR_IN,
    "output[]": _TENSOR_OUT,
    "batch_input[]": "any", "batch_output[]": "any", "optimization": "any",
    "dynamic_batching": {
        "preferred_batch_size[]": "int", "max_queue_delay_microseconds": "int", "preserve_ordering": "bool",
        "priority_levels": "int", "default_priority_level": "int", "default_queue_policy": "any",
        "priority_queue_policy[]": "any",
    },
    "sequence_batching": "any", "ensemble_scheduling": "any",
    "instance_group[]": {
        "name": "string", "kind": "enum:KIND_", "count": "int", "rate_limiter": "any", "gpus[]": "int",
        "secondary_devices[]": "any", "profile[]": "string", "passive": "bool", "host_policy": "string",
    },
    "default_model_filename": "string", "cc_model_filenames[]": "any", "metric_tags[]": "any", "parameters[]": "any",
    "model_warmup[]": {"name": "string", "batch_size": "int", "inputs[]": {"key": "string", "value": _WARMUP_INPUT}, "count": "int"},
    "model_operations": "any", "model_transaction_policy": "any", "model_repository_agents": "any", "response_cache": "any",
}


def _check(tree: dict[str, list[Any]], schema: dict[str, Any], path: str, where: str) -> dict[str, Any]:
    """Validate a generic tree against a schema; returns {field: value or [values]}."""
    lines = tree.get("__lines__", [{}])[0]
    fields = {name.rstrip("[]"): (kind, name.endswith("[]")) for name, kind in schema.items()}
    out: dict[str, Any] = {}
    for name, values in tree.items():
        if name == "__lines__":
            continue
        loc = Location(where, lines.get(name))
        key = f"{path}.{name}" if path else name
        if name not in fields:
            known = ", ".join(sorted(fields)) or "none"
            raise ConfigError([Problem(loc, key, f"unknown field (this message has: {known})")])
        kind, repeated = fields[name]
        if not repeated and len(values) != 1:
            raise ConfigError([Problem(loc, key, "set more than once (it is not a repeated field)")])
        checked = [_check_value(v, kind, key, loc, where) for v in values]
        out[name] = checked if repeated else checked[0]
    return out


def _check_value(value: Any, kind: Any, key: str, loc: Location, where: str) -> Any:
    if kind == "any":
        return value
    if isinstance(kind, dict):
        if not isinstance(value, dict):
            raise ConfigError([Problem(loc, key, f"expected a message {{ ... }}, got {value!r}")])
        return _check(value, kind, key, where)
    if isinstance(value, dict):
        raise ConfigError([Problem(loc, key, f"expected a {kind.split(':')[0]} value, got a message")])
    if kind == "string":
        if isinstance(value, Ident) or not isinstance(value, str):
            raise ConfigError([Problem(loc, key, f"expected a quoted string, got {value!r}")])
        return value
    if kind == "int":
        if not isinstance(value, int):
            raise ConfigError([Problem(loc, key, f"expected an integer, got {value!r}")])
        return value
    if kind == "float":
        if isinstance(value, str):
            raise ConfigError([Problem(loc, key, f"expected a number, got {value!r}")])
        return float(value)
    if kind == "bool":
        if value in ("true", "True", "t", 1):
            return True
        if value in ("false", "False", "f", 0):
            return False
        raise ConfigError([Problem(loc, key, f"expected true or false, got {value!r}")])
    prefix = kind.split(":", 1)[1]
    if not isinstance(value, Ident) or not value.startswith(prefix):
        raise ConfigError([Problem(loc, key, f"expected an enum value {prefix}..., got {value!r}")])
    return str(value)


# --- the typed config ------------------------------------------------------------------
@dataclass(frozen=True)
class TensorSpec:
    """One input or output: KServe datatype (FP32) and dims without the batch dimension."""

    name: str
    datatype: str
    dims: tuple[int, ...]


@dataclass(frozen=True)
class Batching:
    preferred_batch_sizes: tuple[int, ...] = ()
    max_queue_delay_us: int = 0


@dataclass(frozen=True)
class ModelConfig:
    """What the serving app needs from a config.pbtxt."""

    name: str
    platform: str
    max_batch_size: int
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    default_model_filename: str = ""
    dynamic_batching: Batching | None = None
    instance_count: int = 1
    # ("latest", (n,)) | ("specific", (v1, v2, ...)) | ("all", ())
    version_policy: tuple[str, tuple[int, ...]] = ("latest", (1,))
    warmup_batch_sizes: tuple[int, ...] = ()

    @property
    def batching(self) -> bool:
        return self.max_batch_size > 0

    def full_shape(self, tensor: TensorSpec) -> list[int]:
        """The shape clients see: [-1, *dims] with batching, else dims."""
        return [-1, *tensor.dims] if self.batching else list(tensor.dims)

    @property
    def model_filename(self) -> str:
        return self.default_model_filename or DEFAULT_FILENAMES.get(self.platform, "model.onnx")


# Triton's default model file of each platform.
DEFAULT_FILENAMES = {"onnxruntime_onnx": "model.onnx", "pytorch_libtorch": "model.pt"}
SUPPORTED_PLATFORMS = tuple(DEFAULT_FILENAMES)


def _datatype(enum: str) -> str:
    kind = enum.removeprefix("TYPE_")
    return "BYTES" if kind == "STRING" else kind


def parse_config(text: str, where: str = "config.pbtxt") -> ModelConfig:
    """Parse and check a config.pbtxt; raises ConfigError naming the file and line."""
    tree = _check(parse_text(text, where), _SCHEMA, "", where)
    loc = Location(where)

    def tensors(key: str) -> tuple[TensorSpec, ...]:
        out = []
        for t in tree.get(key, []):
            if not t.get("name"):
                raise ConfigError([Problem(loc, key, "every tensor needs a name")])
            dims = t.get("dims", [])
            if not dims:
                raise ConfigError([Problem(loc, f"{key}.{t['name']}", "dims must not be empty")])
            out.append(TensorSpec(t["name"], _datatype(t.get("data_type", "TYPE_INVALID")), tuple(dims)))
        return tuple(out)

    dynamic = tree.get("dynamic_batching")
    batching = None
    if dynamic is not None:
        batching = Batching(tuple(dynamic.get("preferred_batch_size", [])), int(dynamic.get("max_queue_delay_microseconds", 0)))
    policy_tree = tree.get("version_policy") or {"latest": {}}
    if len(policy_tree) != 1:
        raise ConfigError([Problem(loc, "version_policy", "set exactly one of latest, all, specific")])
    ((kind, body),) = policy_tree.items()
    policy = {
        "latest": ("latest", (int(body.get("num_versions", 1)),)),
        "all": ("all", ()),
        "specific": ("specific", tuple(body.get("versions", []))),
    }[kind]
    groups = tree.get("instance_group", [])
    return ModelConfig(
        name=tree.get("name", ""),
        platform=tree.get("platform", "") or _backend_platform(tree.get("backend", "")),
        max_batch_size=int(tree.get("max_batch_size", 0)),
        inputs=tensors("input"),
        outputs=tensors("output"),
        default_model_filename=tree.get("default_model_filename", ""),
        dynamic_batching=batching,
        instance_count=sum(int(g.get("count", 1)) for g in groups) if groups else 1,
        version_policy=policy,
        warmup_batch_sizes=tuple(int(w.get("batch_size", 1)) for w in tree.get("model_warmup", [])),
    )


def _backend_platform(backend: str) -> str:
    return {"onnxruntime": "onnxruntime_onnx", "pytorch": "pytorch_libtorch"}.get(backend, backend)


def read_config(path: Path) -> ModelConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([Problem(Location(str(path)), "", f"cannot read: {exc}")]) from None
    return parse_config(text, str(path))


def config_from_recipe(recipe) -> ModelConfig:
    """The config a tabular recipe's model is served with when no config.pbtxt exists
    (serving.backend ray_serve: Triton's template is not rendered for it)."""
    from framework.signature import model_signature
    from framework.targets.triton import PLATFORMS, model_name

    serving = recipe.serving
    signature = model_signature(recipe)
    batching = serving.max_batch_size > 0

    def specs(tensors) -> tuple[TensorSpec, ...]:
        return tuple(TensorSpec(t.name, t.dtype, (t.width,) if batching else t.shape) for t in tensors)

    dynamic = serving.dynamic_batching if batching else None
    policy = getattr(serving, "version_policy", None)
    version_policy: tuple[str, tuple[int, ...]] = ("latest", (2,))  # champion and candidate
    if policy is not None:
        version_policy = ("specific", tuple(sorted(set(policy.specific)))) if policy.specific else ("latest", (policy.latest,))
    return ModelConfig(
        name=model_name(recipe),
        platform=PLATFORMS[serving.format],
        max_batch_size=serving.max_batch_size,
        inputs=specs(signature.inputs),
        outputs=specs(signature.outputs),
        dynamic_batching=None if dynamic is None else Batching(
            tuple(sorted(set(dynamic.preferred_batch_sizes))), dynamic.max_queue_delay_us
        ),
        instance_count=serving.instances.count,
        version_policy=version_policy,
    )


__all__ = [
    "ConfigError", "ModelConfig", "TensorSpec", "Batching", "parse_config", "parse_text", "read_config",
    "config_from_recipe", "SUPPORTED_PLATFORMS", "DEFAULT_FILENAMES",
]
