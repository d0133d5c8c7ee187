"""JSON Schema of the recipe language, exported from the models.

- `recipe.schema.json`: a composed, resolved recipe (what `mlops show` prints).
- `recipe-file.schema.json`: one recipe file or `@package _global_` overlay: every key
  optional (the rest comes from the defaults list), plus `defaults`.
- `sections/<section>.schema.json`: one group option file (e.g. recipes/serving/*.yaml).
Editors pick them up through the `# yaml-language-server: $schema=...` first line.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from framework import __version__
from framework.recipe.recipe import Recipe

DIALECT = "https://json-schema.org/draft/2020-12/schema"
_DEFAULTS_LIST = {
    "description": "Hydra defaults list: group options merged before this file's own keys.",
    "type": "array",
    "items": {"anyOf": [{"type": "string"}, {"type": "object", "additionalProperties": {"type": ["string", "null"]}}]},
}


def recipe_schema() -> dict[str, Any]:
    schema = Recipe.model_json_schema()
    return {"$schema": DIALECT, "$id": "recipe.schema.json", **schema,
            "description": f"A composed recipe of the mlops framework {_major_minor()}."}


def export_schemas() -> dict[str, str]:
    """Relative path under schemas/ -> file text, deterministic."""
    full = recipe_schema()
    partial = _partial(full)
    files = {"recipe.schema.json": full}
    recipe_file = {**partial, "$id": "recipe-file.schema.json", "title": "RecipeFile",
                   "description": "One recipe file or env overlay; sections are merged from the defaults list."}
    recipe_file["properties"] = {"defaults": _DEFAULTS_LIST, **partial["properties"]}
    files["recipe-file.schema.json"] = recipe_file
    for section, prop in partial["properties"].items():
        body = _section_body(prop)
        if "$ref" not in body and "anyOf" not in body:
            continue  # a scalar top-level key, not a section with a group folder
        files[f"sections/{section}.schema.json"] = {
            "$schema": DIALECT, "$id": f"sections/{section}.schema.json", "title": section,
            **body, "$defs": _reachable_defs(body, partial.get("$defs", {})),
        }
    return {path: json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n" for path, doc in files.items()}


def document(path: str, schema: dict[str, Any]) -> str:
    """A schema file's text under schemas/: the dialect and $id first, deterministic."""
    return json.dumps({"$schema": DIALECT, "$id": path, **schema}, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def _major_minor() -> str:
    return ".".join(__version__.split(".")[:2])


def _section_body(prop: dict[str, Any]) -> dict[str, Any]:
    """The schema of a section as a whole document (an optional section: its non-null form)."""
    body = {k: v for k, v in prop.items() if k != "default"}
    options = body.get("anyOf", [])
    if any(o.get("type") == "null" for o in options):
        rest = [o for o in options if o.get("type") != "null"]
        body.pop("anyOf")
        body.update(rest[0] if len(rest) == 1 else {"anyOf": rest})
    return body


def _reachable_defs(node: Any, defs: dict[str, Any]) -> dict[str, Any]:
    """Only the `$defs` a section refers to, directly or through other defs."""
    found: dict[str, Any] = {}
    pending = [node]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            ref = item.get("$ref", "")
            name = ref.removeprefix("#/$defs/")
            if ref.startswith("#/$defs/") and name not in found:
                found[name] = defs[name]
                pending.append(defs[name])
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return found


def _partial(schema: dict[str, Any]) -> dict[str, Any]:
    """Every key optional; variants as anyOf, so a file may set part of a section."""
    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            out = {}
            for key, value in node.items():
                if key in ("required", "discriminator"):
                    continue
                out["anyOf" if key == "oneOf" else key] = strip(value)
            return out
        if isinstance(node, list):
            return [strip(item) for item in node]
        return node

    return strip(copy.deepcopy(schema))
