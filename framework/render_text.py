"""Human-readable text of results: deterministic YAML and provenance listings."""

from __future__ import annotations

import json
from typing import Any

import yaml


class _Dumper(yaml.SafeDumper):
    """Block-style YAML; multi-line strings as literal blocks."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def to_yaml(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, allow_unicode=True, width=100)


def provenance_lines(result: Any) -> list[str]:
    """`source  key.path: value` for every leaf of a ShowResult, aligned."""
    leaves = [(source, path, _value_at(result.resolved, path)) for path, source in result.provenance.items()]
    width = max((len(source) for source, _, _ in leaves), default=0)
    return [f"{source.ljust(width)}  {path}: {json.dumps(value)}" for source, path, value in leaves]


def _value_at(tree: Any, path: str) -> Any:
    for part in path.split(".") if path else []:
        tree = tree[int(part)] if isinstance(tree, list) else tree[part]
    return tree
