"""Turn pydantic's validation errors into `file:line: key.path: message` problems."""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic_core import ErrorDetails

from framework.errors import Problem
from framework.recipe.provenance import Provenance
from framework.recipe.suggest import did_you_mean, one_of

_TYPE_WORDS = {
    "string_type": "a string", "int_type": "an integer", "float_type": "a number",
    "bool_type": "true or false", "dict_type": "a mapping of keys", "list_type": "a list",
    "model_type": "a mapping of keys", "model_attributes_type": "a mapping of keys",
    "int_from_float": "an integer",
}


def problems_from(errors: list[ErrorDetails], data: Any, root: type[BaseModel], provenance: Provenance) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[str] = set()
    for error in errors:
        path, model_loc = _key_path(error["loc"], data)
        message = _message(error, path, model_loc, root)
        if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
            path = _join(path, str(error.get("ctx", {}).get("discriminator", "")).strip("'"))
        if path in seen:  # a value failing every member of a plain union: report it once
            continue
        seen.add(path)
        problems.append(Problem(provenance.locate(path), path, message))
    return problems


def _key_path(loc: tuple[Any, ...], data: Any) -> tuple[str, tuple[Any, ...]]:
    """The user's key path of an error location, without union tags and member names."""
    parts: list[str] = []
    node = data
    for index, element in enumerate(loc):
        last = index == len(loc) - 1
        if isinstance(node, dict) and element in node:
            parts.append(str(element))
            node = node[element]
        elif isinstance(node, list) and isinstance(element, int) and element < len(node):
            parts.append(str(element))
            node = node[element]
        elif last and isinstance(node, dict) and isinstance(element, str) and "[" not in element:
            parts.append(element)  # a missing key
            node = None
        # else: a discriminator tag or a union member name, not a key the user wrote
    return ".".join(parts), loc


def _message(error: ErrorDetails, path: str, loc: tuple[Any, ...], root: type[BaseModel]) -> str:
    kind = error["type"]
    given = error.get("input")
    ctx = error.get("ctx", {})
    if kind == "extra_forbidden":
        leaf = str(loc[-1])
        known = _fields_at(root, loc[:-1])
        parent = path.rpartition(".")[0]
        return f"unknown key '{leaf}'{did_you_mean(leaf, known, prefix=parent)}; keys here: {one_of(known)}"
    if kind == "missing":
        return "required key missing"
    if kind == "union_tag_invalid":
        tags = [t.strip().strip("'") for t in str(ctx.get("expected_tags", "")).split(",")]
        tag = str(ctx.get("tag"))
        return f"unknown value '{tag}'{did_you_mean(tag, tags)}; one of: {', '.join(tags)}"
    if kind == "union_tag_not_found":
        return "required key missing: it selects the variant of this section"
    if kind == "literal_error":
        expected = str(ctx.get("expected", ""))
        options = [o.strip().strip("'") for o in expected.replace(" or ", ", ").split(",")]
        return f"'{given}' is not allowed{did_you_mean(str(given), options)}; one of: {expected}"
    if kind in ("too_short", "too_long"):
        bound = "at least" if kind == "too_short" else "at most"
        limit = ctx.get("min_length" if kind == "too_short" else "max_length")
        return f"must have {bound} {limit} item{'s' if limit != 1 else ''}, got {ctx.get('actual_length')}"
    if kind in _TYPE_WORDS:
        return f"must be {_TYPE_WORDS[kind]}, got {_describe(given)}"
    text = error["msg"].replace("Input should be", "must be").replace("Value error, ", "")
    if kind.startswith(("greater", "less", "too_", "string_too", "string_pattern", "multiple")):
        text += f", got {_describe(given)}"
    return text


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return f"'{value}' (a string)" if len(value) < 60 else f"'{value[:57]}...' (a string)"
    return repr(value)


def _fields_at(root: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Names of the fields of the model found by walking `loc` from `root`."""
    current: Any = root
    for element in loc:
        current = _step(current, element)
        if current is None:
            return []
    model = _as_model(current)
    return list(model.model_fields) if model else []


def _step(annotation: Any, element: Any) -> Any:
    model = _as_model(annotation)
    if model is not None:
        field = model.model_fields.get(element)
        return field.annotation if field else None
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (list, tuple) and args:
        return args[0]
    if origin is dict and len(args) == 2:
        return args[1]
    if origin in (typing.Union, types.UnionType):
        for arg in args:  # a discriminated union: the tag names the member
            member = _as_model(arg)
            if member and any(_tag_values(member, name) and element in _tag_values(member, name) for name in member.model_fields):
                return member
        for arg in args:
            if arg is not type(None):
                return _step(arg, element)
    if origin is typing.Annotated:
        return _step(args[0], element)
    return None


def _as_model(annotation: Any) -> type[BaseModel] | None:
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _as_model(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _as_model(members[0]) if len(members) == 1 else None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _tag_values(model: type[BaseModel], field_name: str) -> tuple[Any, ...]:
    annotation = model.model_fields[field_name].annotation
    return typing.get_args(annotation) if typing.get_origin(annotation) is typing.Literal else ()


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key
