"""What the fake API server (fake_kube_api) does to a write, as kube-apiserver does it:
validation against the schemas the target tests use, server-side apply's field
ownership (metadata.managedFields), and the Status bodies of its refusals.

Validation: built-in kinds against kubernetes-validate's strict schema of the fake's
Kubernetes version, custom resources against the JSON Schema vendored from their CRD
(vendor/crds/jsonschema, as tests/targets do). A field the schema does not declare
fails a server-side apply with kube's 500 `failed to create typed patch object (...):
.spec.x: field not declared in schema` (kubernetes#122480: no 4xx for it yet); any
other violation is a 422 Invalid whose causes are worded as kube's field errors. Two
simplifications: only the schemas' rules are checked (types, required fields, enums,
patterns, bounds; kube's Go validation of built-ins checks more: port ranges, DNS
names...), and type errors are 422s (kube may answer some from the typed patch, as 500s).

Field ownership: a manager owns the leaf paths of what it applied (FieldsV1: `f:spec`,
`f:replicas`...); lists of maps that all carry a `name` are keyed by it
(`k:{"name":"app"}`, the element itself `.`), every other list is atomic (kube keys
container ports by containerPort and protocol, Service ports by port and protocol).
"""

from __future__ import annotations

import copy
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

KUBE_VERSION = "1.35"
MISSING = object()  # no value at a path
# metadata that is the server's, or identity: never owned through managedFields
_SERVER_METADATA = {"name", "namespace", "generateName", "uid", "resourceVersion", "generation", "creationTimestamp",
                    "deletionTimestamp", "deletionGracePeriodSeconds", "managedFields", "selfLink"}
Paths = set[tuple[str, ...]]


# --- Status bodies -------------------------------------------------------------------------
def status(code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> tuple[int, Any]:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message}
    if reason:  # kube's 500s carry no reason
        body |= {"reason": reason, "details": details or {}}
    return code, body | {"code": code}


def invalid(group: str, kind: str, name: str, errors: list[tuple[str, str, str]]) -> tuple[int, Any]:
    """422 Invalid for (reason, field, message) errors, as kube's errors.NewInvalid words it."""
    lines = [f"{field}: {message}" for _, field, message in errors]
    aggregate = lines[0] if len(lines) == 1 else f"[{', '.join(lines)}]"
    details = {"name": name, "group": group, "kind": kind,
               "causes": [{"reason": reason, "message": message, "field": field} for reason, field, message in errors]}
    if not group:
        del details["group"]
    return status(422, "Invalid", f'{f"{kind}.{group}" if group else kind} "{name}" is invalid: {aggregate}', details)


def conflict(conflicts: list[tuple[str, str]]) -> tuple[int, Any]:
    """409 for (manager label, path) conflicts, worded as kube's field manager words them."""
    causes = [{"reason": "FieldManagerConflict", "message": f"conflict with {who}", "field": path} for who, path in conflicts]
    if len(conflicts) == 1:
        message = f"Apply failed with 1 conflict: conflict with {conflicts[0][0]}: {conflicts[0][1]}"
    else:
        lines = []
        for who in sorted({who for who, _ in conflicts}):
            lines += [f"conflicts with {who}:"] + [f"- {path}" for w, path in conflicts if w == who]
        message = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
    return status(409, "Conflict", message, {"causes": causes})


# --- validation ----------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _definitions() -> Any:
    from kubernetes_validate import utils
    from referencing import Registry, Resource

    folder = f"kubernetes-json-schema/v{KUBE_VERSION}.0-local-strict"
    return Resource.from_contents(utils.schema_contents(f"{folder}/_definitions.json", KUBE_VERSION)) @ Registry()


@lru_cache(maxsize=None)
def builtin_validator(api_version: str, kind: str) -> Any:
    """kubernetes-validate's strict schema of a built-in kind (unknown fields are errors)."""
    import jsonschema
    from kubernetes_validate import utils
    from referencing import Resource

    short = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)  # rbac.authorization.k8s.io/v1 -> rbac-v1
    schema = utils.schema_contents(f"kubernetes-json-schema/v{KUBE_VERSION}.0-local-strict/{kind.lower()}-{short}.json",
                                   KUBE_VERSION)
    return jsonschema.Draft202012Validator(schema, registry=Resource.from_contents(schema) @ _definitions())


@lru_cache(maxsize=None)
def crd_validator(path: Path) -> Any:
    return schema_validator(json.loads(path.read_text(encoding="utf-8")))


def schema_validator(schema: dict[str, Any]) -> Any:
    import jsonschema

    # Go's regexp takes an inline flag after the anchor (`^(?i)...`, PrometheusRule); Python's
    # re wants it first: the same language (vendor/SOURCES.md).
    schema = json.loads(json.dumps(schema).replace('"^(?i)', '"(?i)^'))
    return jsonschema.validators.validator_for(schema)(schema)


def problems(validator: Any, obj: dict[str, Any]) -> tuple[list[list[Any]], list[tuple[str, str, str]]]:
    """(paths of the fields the schema does not declare, the other errors as (reason, field, message))."""
    unknown, errors = [], []
    for error in validator.iter_errors(obj):
        error = _deepest(error)
        path = list(error.absolute_path)
        if error.validator == "additionalProperties":
            declared = error.schema.get("properties", {})
            unknown += [path + [key] for key in error.instance if key not in declared
                        and not any(re.search(p, key) for p in error.schema.get("patternProperties", {}))]
        elif error.validator == "required":
            errors += [("FieldValueRequired", _field(path + [key]), "Required value")
                       for key in error.validator_value if key not in error.instance]
        else:
            errors.append(_field_error(error, _field(path)))
    return unknown, list(dict.fromkeys(errors))


def _deepest(error: Any) -> Any:
    """Under a oneOf/anyOf (int-or-string, Quantity, nullable), the branch that came closest."""
    import jsonschema

    while error.validator in ("oneOf", "anyOf") and error.context:
        error = jsonschema.exceptions.best_match(error.context)
    return error


def _field(path: list[Any]) -> str:
    """kube's field path: spec.template.spec.containers[0].image."""
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def _value(value: Any) -> str:
    """A bad value as Go's field.Error prints it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return f"{value:g}" if isinstance(value, float) else str(value)
    return json.dumps(value, separators=(",", ":"))


_JSON_TYPES = {str: "string", bool: "boolean", int: "integer", float: "number", list: "array", dict: "object"}


def _field_error(error: Any, field: str) -> tuple[str, str, str]:
    value, rule, kind = error.instance, error.validator_value, error.validator
    bad = _value(value)
    if kind == "enum":
        return "FieldValueNotSupported", field, f"Unsupported value: {bad}: supported values: " + ", ".join(map(_value, rule))
    if kind == "type":
        expected = next(t for t in ([rule] if isinstance(rule, str) else rule) if t != "null")
        got = _JSON_TYPES.get(type(value), "null")
        return "FieldValueTypeInvalid", field, f'Invalid value: "{got}": {field} in body must be of type {expected}: "{got}"'
    if kind == "maxLength":
        return "FieldValueTooLong", field, f"Too long: may not be longer than {rule}"
    if kind == "maxItems":
        return "FieldValueTooMany", field, f"Too many: {len(value)}: must have at most {rule} items"
    detail = {
        "pattern": f"should match '{rule}'", "minimum": f"should be greater than or equal to {rule}",
        "maximum": f"should be less than or equal to {rule}", "exclusiveMinimum": f"should be greater than {rule}",
        "minLength": f"should be at least {rule} chars long", "minItems": f"should have at least {rule} items",
    }.get(kind)
    return "FieldValueInvalid", field, f"Invalid value: {bad}: " + (f"{field} in body {detail}" if detail else error.message)


def typed_patch_error(obj: dict[str, Any], unknown: list[list[Any]]) -> tuple[int, Any]:
    """kube's answer to an apply patch with undeclared fields (a 500, no reason)."""
    meta = obj.get("metadata") or {}
    group_version = obj.get("apiVersion", "")
    where = f"{meta.get('namespace', '')}/{meta.get('name', '')}; {group_version if '/' in group_version else '/' + group_version}"
    lines = [f"{smd_path(obj, path)}: field not declared in schema" for path in unknown]
    errors = lines[0] if len(lines) == 1 else "errors:\n  " + "\n  ".join(lines)
    return status(500, "", f"failed to create typed patch object ({where}, Kind={obj.get('kind')}): {errors}")


def smd_path(obj: Any, path: list[Any]) -> str:
    """The path as server-side apply prints it: .spec.containers[name="app"].image."""
    out, node = "", obj
    for part in path:
        if isinstance(part, int):
            keyed = _keyed(node)
            out += f'[name="{node[part]["name"]}"]' if keyed else f"[{part}]"
        else:
            out += f".{part}"
        node = node[part] if isinstance(node, (dict, list)) and (isinstance(node, list) or part in node) else None
    return out


# --- field ownership -----------------------------------------------------------------------
def _keyed(node: Any) -> bool:
    """A list of maps keyed by `name` (containers, env, volumes, ports with names...)."""
    if not isinstance(node, list) or not node or not all(isinstance(i, dict) and isinstance(i.get("name"), str) for i in node):
        return False
    return len({i["name"] for i in node}) == len(node)


def _key(item: dict[str, Any]) -> str:
    return "k:" + json.dumps({"name": item["name"]}, separators=(",", ":"))


def owned(obj: dict[str, Any]) -> Paths:
    """The leaf paths of an object's configuration: what the manager that wrote it owns."""
    paths: Paths = set()
    for key, value in obj.items():
        if key == "metadata":
            value = {k: v for k, v in (value or {}).items() if k not in _SERVER_METADATA}
        if key not in ("apiVersion", "kind", "status") and value != {}:
            _walk(value, (f"f:{key}",), paths)
    return paths


def _walk(node: Any, prefix: tuple[str, ...], paths: Paths) -> None:
    if isinstance(node, dict) and node:
        for key, value in node.items():
            _walk(value, prefix + (f"f:{key}",), paths)
    elif _keyed(node):
        for item in node:
            element = prefix + (_key(item),)
            paths.add(element + (".",))
            _walk(item, element, paths)
    else:
        paths.add(prefix)


def value_at(obj: Any, path: tuple[str, ...]) -> Any:
    node = obj
    for part in path:
        if part == ".":
            return node
        if part.startswith("f:"):
            node = node.get(part[2:], MISSING) if isinstance(node, dict) else MISSING
        else:
            name = json.loads(part[2:])["name"]
            node = next((i for i in node if isinstance(i, dict) and i.get("name") == name), MISSING) \
                if isinstance(node, list) else MISSING
        if node is MISSING:
            return MISSING
    return node


def _remove(obj: dict[str, Any], path: tuple[str, ...], kept: Paths) -> None:
    """Drop the field at path, then the maps it leaves empty that nobody owns."""
    if path[-1] == ".":  # a list element: gone unless another manager owns something in it
        element, container = value_at(obj, path[:-1]), value_at(obj, path[:-2])
        if element is not MISSING and not any(p[:len(path) - 1] == path[:-1] for p in kept):
            container.remove(element)
        return
    parent = value_at(obj, path[:-1])
    if isinstance(parent, dict) and parent.pop(path[-1][2:], MISSING) is not MISSING:
        if not parent and len(path) > 1 and path[:-1] not in kept and not path[-2].startswith("k:"):
            _remove(obj, path[:-1], kept)


def _merge(live: dict[str, Any], applied: dict[str, Any]) -> None:
    for key, value in applied.items():
        if isinstance(value, dict) and value and isinstance(live.get(key), dict):
            _merge(live[key], value)
        elif _keyed(value) and _keyed(live.get(key)):
            for item in value:
                match = next((i for i in live[key] if i["name"] == item["name"]), None)
                _merge(match, item) if match is not None else live[key].append(copy.deepcopy(item))
        else:
            live[key] = copy.deepcopy(value)


def entries(obj: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The object's managedFields, each with its paths under `paths` (a working copy)."""
    found = ((obj or {}).get("metadata") or {}).get("managedFields") or []
    return [{**{k: v for k, v in e.items() if k != "fieldsV1"}, "paths": _paths(e.get("fieldsV1") or {})} for e in found]


def _paths(trie: dict[str, Any], prefix: tuple[str, ...] = ()) -> Paths:
    paths: Paths = set()
    for part, sub in trie.items():
        paths |= _paths(sub, prefix + (part,)) if sub else {prefix + (part,)}
    return paths


def _trie(paths: Paths) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for path in sorted(paths):
        node = root
        for part in path:
            node = node.setdefault(part, {})
    return root


def store_entries(obj: dict[str, Any], working: list[dict[str, Any]]) -> None:
    obj.setdefault("metadata", {})["managedFields"] = [
        {**{k: v for k, v in e.items() if k != "paths"}, "fieldsType": "FieldsV1", "fieldsV1": _trie(e["paths"])}
        for e in working if e["paths"]]


def label(entry: dict[str, Any]) -> str:
    """A manager as kube's conflict messages name it."""
    who = json.dumps(entry["manager"])
    if entry.get("subresource"):
        who += f' with subresource {json.dumps(entry["subresource"])}'
    return f"{who} using {entry['apiVersion']}" if entry["operation"] == "Update" else who


def printable(path: tuple[str, ...]) -> str:
    """.spec.template.spec.containers[name="app"].image (`.`, the element itself, adds nothing)."""
    return "".join(f".{p[2:]}" if p.startswith("f:") else f'[name={json.dumps(json.loads(p[2:])["name"])}]'
                   for p in path if p != ".")


def apply(live: dict[str, Any] | None, applied: dict[str, Any], manager: str, force: bool,
          now: str) -> tuple[dict[str, Any] | None, list[tuple[str, str]]]:
    """The object once `manager` applied `applied` (None and the conflicts when another
    manager owns a field it changes, unless forced)."""
    working = entries(live)
    mine = next((e for e in working if e["manager"] == manager and e["operation"] == "Apply"), None)
    if mine is None:
        mine = {"manager": manager, "operation": "Apply", "apiVersion": applied.get("apiVersion"), "time": now, "paths": set()}
        working.append(mine)
    new = owned(applied)
    base = live or {}
    clashes = [(e, p) for e in working if e is not mine for p in sorted(new & e["paths"])
               if p[-1] != "." and value_at(base, p) != value_at(applied, p)]
    if clashes and not force:
        return None, [(label(e), printable(p)) for e, p in clashes]
    for entry, path in clashes:  # forced: the fields change hands
        entry["paths"].discard(path)
    others = set().union(*(e["paths"] for e in working if e is not mine))
    result = copy.deepcopy(base)
    for path in sorted(mine["paths"] - new - others, key=len, reverse=True):
        _remove(result, path, others | new)
    _merge(result, {k: v for k, v in applied.items() if k != "status"})
    if result != base or mine["paths"] != new:
        mine.update(paths=new, apiVersion=applied.get("apiVersion"), time=now)
    store_entries(result, working)
    return result, []


def update(live: dict[str, Any], new: dict[str, Any], manager: str, now: str) -> dict[str, Any]:
    """`new` written by an Update (kubectl edit, a controller): its manager takes every
    field it changed, from whoever owned it."""
    changed = {p for p in owned(new) if (value_at(live, p) is MISSING if p[-1] == "." else  # a new list element
                                         value_at(live, p) != value_at(new, p))}
    dropped = owned(live) - owned(new)
    working = entries(live)
    for entry in working:
        entry["paths"] -= changed | dropped
    mine = next((e for e in working if e["manager"] == manager and e["operation"] == "Update"), None)
    if mine is None:
        mine = {"manager": manager, "operation": "Update", "apiVersion": new.get("apiVersion"), "time": now, "paths": set()}
        working.append(mine)
    mine["paths"] |= changed
    result = copy.deepcopy(new)
    store_entries(result, working)
    return result


def spec_changed(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """What bumps metadata.generation: anything but metadata and status (for a Deployment
    its annotations too, which it copies to its ReplicaSets)."""
    def spec(obj: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in obj.items() if k not in ("metadata", "status")}

    def annotations(obj: dict[str, Any]) -> Any:
        return (obj.get("metadata") or {}).get("annotations") or {}

    return spec(old) != spec(new) or (new.get("kind") == "Deployment" and annotations(old) != annotations(new))
