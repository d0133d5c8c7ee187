"""Plan: what generating a recipe would change, in the recipe's own terms.

The previous state is the committed `recipe.resolved.yaml`; each changed key is
described (`serving.max_batch_size 8 -> 16`, `rollout canary first step 10% -> 25%`)
with the artifacts that change because of it, found by re-rendering the previous
recipe with that one key changed.
"""

from __future__ import annotations

import json
from typing import Any

import yaml
from pydantic import ValidationError

from framework.generate import RESOLVED, render_env
from framework.project import Project, display_path


def plan_changes(project: Project, validated) -> list[str]:
    rendered = render_env(project, validated)
    previous_file = rendered.directory / RESOLVED
    if not previous_file.is_file():
        count = len(rendered.files) + len(rendered.workflows)
        return [f"first generation of {rendered.recipe} ({rendered.env}): {count} files under {display_path(rendered.directory)}"]
    old = yaml.safe_load(previous_file.read_text(encoding="utf-8")) or {}
    new = validated.recipe.model_dump(mode="json")
    lines = []
    for path, before, after in _changed_leaves(old, new):
        touched = _artifacts_changed_by(project, validated, old, path, after)
        suffix = f": changes {', '.join(touched)}" if touched else ""
        lines.append(f"{_describe(path, before, after, new)}{suffix}")
    if not lines:
        lines = [f"{path}: {what}" for path, what in _artifact_drift(rendered)]
    return lines


_ABSENT = object()


def _changed_leaves(old: Any, new: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    if isinstance(old, dict) and isinstance(new, dict):
        keys = list(dict.fromkeys([*old, *new]))
        return [c for k in keys for c in _changed_leaves(old.get(k, _ABSENT), new.get(k, _ABSENT), _join(prefix, k))]
    return [] if old == new else [(prefix, old, new)]


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _show(value: Any) -> str:
    if value is _ABSENT:
        return "(unset)"
    return json.dumps(value) if isinstance(value, (dict, list, str)) or value is None else str(value)


def _describe(path: str, before: Any, after: Any, new: dict[str, Any]) -> str:
    strategy = new.get("rollout", {}).get("strategy")
    if path == "rollout.steps" and isinstance(before, list) and isinstance(after, list) and before and after:
        if before[0] != after[0]:
            return f"rollout {strategy} first step {before[0]}% -> {after[0]}% (steps {before} -> {after})"
        return f"rollout {strategy} steps {before} -> {after}"
    if path == "rollout.strategy":
        return f"rollout strategy {before} -> {after}"
    if path.endswith("mirror_percent"):
        return f"rollout shadow mirrors {_show(before)}% -> {_show(after)}% of traffic"
    return f"{path} {_show(before)} -> {_show(after)}"


def _artifacts_changed_by(project: Project, validated, old: dict[str, Any], path: str, value: Any) -> list[str]:
    """Artifacts that differ when only `path` moves from its old to its new value."""
    from framework.recipe.recipe import Recipe
    from framework.targets import render_all

    try:
        before = Recipe.model_validate(old)
        changed = _set(json.loads(json.dumps(old)), path.split("."), value)
        after = Recipe.model_validate(changed)
    except (ValidationError, ValueError, KeyError):
        return ["(together with other changes)"]
    old_files = {a.path: a.text for a in render_all(before)}
    new_files = {a.path: a.text for a in render_all(after)}
    return sorted(p for p in old_files.keys() | new_files.keys() if old_files.get(p) != new_files.get(p))


def _set(tree: dict[str, Any], parts: list[str], value: Any) -> dict[str, Any]:
    node = tree
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    if value is _ABSENT:
        node.pop(parts[-1], None)
    else:
        node[parts[-1]] = value
    return tree


def _artifact_drift(rendered) -> list[tuple[str, str]]:
    """Without recipe changes, files can still differ (a new framework version)."""
    drift = []
    for rel, text in sorted(rendered.files.items()):
        path = rendered.directory / rel
        if not path.is_file():
            drift.append((display_path(path), "would be added"))
        elif path.read_text(encoding="utf-8") != text:
            drift.append((display_path(path), "would change (same recipe, new framework output)"))
    return drift
