"""Generate: validated recipes -> every artifact on disk, or a drift report.

All output is computed in memory first; only when every recipe and env rendered is
anything written (temporary siblings, then renames), so a bad recipe or a crash while
rendering leaves `generated/` as it was.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from framework import __version__
from framework.contracts.resolved import RECIPE_FILE as RESOLVED
from framework.contracts.workflows import WORKFLOW_PREFIX  # workflow files generate owns (and may delete when stale)
from framework.errors import MlopsError, Problem, RecipeError
from framework.project import Project, display_path

MANIFEST = "manifest.json"


def actionlint_file(project: Project, recipes) -> tuple[Path, str]:
    """The project-wide actionlint config (path, text), from every recipe's ci section."""
    from framework.targets.actionlint import ACTIONLINT_CONFIG, actionlint_text

    return project.root / ACTIONLINT_CONFIG, actionlint_text(recipes)


@dataclass(frozen=True)
class RenderedEnv:
    """One recipe in one env: its directory and files (relative path -> text)."""

    recipe: str
    env: str
    directory: Path
    files: dict[str, str]
    workflows: dict[str, str]


@dataclass
class Changes:
    added: list[Path] = field(default_factory=list)
    changed: list[Path] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)
    diffs: dict[Path, str] = field(default_factory=dict)

    @property
    def any(self) -> bool:
        return bool(self.added or self.changed or self.removed)


def render_env(project: Project, validated) -> RenderedEnv:
    """Render every target for one validated recipe, plus its resolved recipe and manifest."""
    from framework.targets import render_all
    from framework.targets.common import resolved_recipe_yaml

    recipe = validated.recipe
    artifacts = render_all(recipe)
    files = {RESOLVED: resolved_recipe_yaml(recipe)}
    files.update({a.path: a.text for a in artifacts if a.scope == "env"})
    files[MANIFEST] = _manifest(recipe, _relative(validated.composed.source.file, project.root), files)
    workflows = {a.path: a.text for a in artifacts if a.scope == "workflows"}
    directory = project.generated_dir / recipe.name / recipe.environment
    return RenderedEnv(recipe.name, recipe.environment, directory, files, workflows)


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.name


def _manifest(recipe, source_text: str, files: dict[str, str]) -> str:
    """Volatile facts (the framework version) live here only, with a hash of each file."""
    return json.dumps(
        {
            "generated_by": "mlops",
            "framework_version": __version__,
            "recipe": recipe.name,
            "environment": recipe.environment,
            "source": source_text,
            "input_hash": _sha256(files[RESOLVED]),
            "artifacts": [{"path": path, "sha256": _sha256(text)} for path, text in sorted(files.items())],
        },
        indent=2,
        sort_keys=True,
    ) + "\n"


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def expected_outputs(project: Project, rendered: Sequence[RenderedEnv]) -> dict[Path, str]:
    """Absolute path -> text of every file; workflows must agree across envs."""
    outputs: dict[Path, str] = {}
    for env in rendered:
        for rel, text in env.files.items():
            outputs[env.directory / rel] = text
    workflow_sources: dict[Path, RenderedEnv] = {}
    for env in rendered:
        for rel, text in env.workflows.items():
            path = project.workflows_dir / rel
            if path in outputs and outputs[path] != text:
                first = workflow_sources[path]
                raise RecipeError(
                    [Problem(None, "ci", f"{display_path(path)} differs between {first.recipe} ({first.env}) and "
                             f"{env.recipe} ({env.env}): a workflow may only use settings that are the same in every env")]
                )
            outputs[path] = text
            workflow_sources[path] = env
    return outputs


def owned_files(project: Project, rendered: Sequence[RenderedEnv], everything: bool) -> set[Path]:
    """Files on disk that generate owns in this run: what it may report stale or delete."""
    owned: set[Path] = set()
    if everything:
        if project.generated_dir.is_dir():
            owned |= {p for p in project.generated_dir.rglob("*") if p.is_file()}
        if project.workflows_dir.is_dir():
            owned |= {p for p in project.workflows_dir.glob(f"{WORKFLOW_PREFIX}*.yml") if p.is_file()}
        return owned
    for env in rendered:
        if env.directory.is_dir():
            owned |= {p for p in env.directory.rglob("*") if p.is_file()}
        for rel in env.workflows:
            owned.add(project.workflows_dir / rel)
    return {p for p in owned if p.is_file()}


def compare(expected: dict[Path, str], owned: set[Path]) -> Changes:
    changes = Changes()
    for path, text in sorted(expected.items()):
        if not path.is_file():
            changes.added.append(path)
            continue
        current = path.read_text(encoding="utf-8")
        if current != text:
            changes.changed.append(path)
            changes.diffs[path] = _short_diff(current, text, path)
    changes.removed = sorted(p for p in owned if p not in expected)
    return changes


def _short_diff(old: str, new: str, path: Path, max_lines: int = 12) -> str:
    lines = list(difflib.unified_diff(
        old.splitlines(), new.splitlines(), f"{display_path(path)} (on disk)", f"{display_path(path)} (generated)",
        n=1, lineterm="",
    ))
    if len(lines) > max_lines:
        lines = lines[:max_lines] + [f"... {len(lines) - max_lines} more diff lines"]
    return "\n".join(lines)


def write(project: Project, expected: dict[Path, str], changes: Changes) -> None:
    """generated/ swapped in whole (atomic); then each workflow file replaced atomically.

    A kill between the two steps leaves current artifacts and stale workflows, which
    the next `generate` (or `generate --check`) reports and fixes.
    """
    from framework.fsutil import update_tree_atomically, write_files_atomic

    root = project.generated_dir
    writes = {p: expected[p] for p in (*changes.added, *changes.changed)}
    inside = {p: t for p, t in writes.items() if p.is_relative_to(root)}
    deletes = [p for p in changes.removed if p.is_relative_to(root)]
    if inside or deletes:
        update_tree_atomically(root, inside, deletes)
    write_files_atomic({p: t for p, t in writes.items() if not p.is_relative_to(root)})
    for path in changes.removed:
        if not path.is_relative_to(root):
            path.unlink(missing_ok=True)


def drift_problems(changes: Changes) -> list[Problem]:
    problems = []
    for kind, paths in (("added", changes.added), ("changed", changes.changed), ("removed", changes.removed)):
        for path in paths:
            message = {"added": "would be added", "changed": "differs from the recipes",
                       "removed": "is stale (no recipe generates it)"}[kind]
            detail = f"\n{changes.diffs[path]}" if path in changes.diffs else ""
            problems.append(Problem(None, display_path(path), f"{message}{detail}"))
    problems.append(Problem(None, "", "generated output drifted: run `mlops generate` and commit"))
    return problems


def check_no_collisions(rendered: Sequence[RenderedEnv]) -> None:
    seen: dict[Path, RenderedEnv] = {}
    for env in rendered:
        if env.directory in seen:
            raise MlopsError(f"{display_path(env.directory)}: generated twice ({seen[env.directory].recipe} and {env.recipe})")
        seen[env.directory] = env
