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
    width = max((len(leaf.source) for leaf in result.leaves), default=0)
    return [f"{leaf.source.ljust(width)}  {leaf.path}: {json.dumps(leaf.value)}" for leaf in result.leaves]
