"""Which file and line set each key of a composed recipe.

Hydra merges the files of the defaults list in order and then applies command-line
overrides; this module replays that order over the YAML node trees (which carry line
numbers), so every key path maps to the place that last set it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from framework.errors import OVERRIDE_SOURCE, Location, Problem, RecipeError
from framework.project import display_path


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: ~10x faster


def parse_yaml_nodes(path: Path) -> yaml.Node | None:
    """The YAML node tree of a file; a syntax error becomes a `file:line` RecipeError."""
    try:
        stat = path.stat()
    except OSError as exc:
        raise RecipeError([Problem(Location(display_path(path)), "", f"cannot read: {exc.strerror}")]) from None
    return _parse_cached(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=512)
def _parse_cached(path: Path, mtime_ns: int, size: int) -> yaml.Node | None:
    """Keyed by modification time and size, so an edited file is parsed again."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RecipeError([Problem(Location(display_path(path)), "", f"cannot read: {exc.strerror}")]) from None
    try:
        return yaml.compose(text, Loader=_LOADER)
    except yaml.MarkedYAMLError as exc:
        raise RecipeError([yaml_problem(path, exc)]) from None


def yaml_problem(path: Path, exc: yaml.MarkedYAMLError) -> Problem:
    mark = exc.problem_mark or exc.context_mark
    if exc.context_mark and "while parsing a flow" in str(exc.context):  # an unclosed bracket: where it opened
        mark = exc.context_mark
    line = mark.line + 1 if mark else None
    what = " ".join(str(p) for p in (exc.context, exc.problem) if p)
    return Problem(Location(display_path(path), line), "", f"YAML syntax error: {what}")


@dataclass
class Provenance:
    """Key path (`training.optimizer.lr`, `ci.paths.0`) -> where it was last set."""

    locations: dict[str, Location] = field(default_factory=dict)

    def set_tree(self, node: yaml.Node, prefix: str, file: str, skip_defaults: bool) -> None:
        if not isinstance(node, yaml.MappingNode):
            return
        if prefix and node.value:  # a group file stands for its whole section
            self.locations[prefix] = Location(file, node.value[0][0].start_mark.line + 1)
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if skip_defaults and not prefix and key == "defaults":
                continue
            self._assign(_join(prefix, key), value_node, Location(file, key_node.start_mark.line + 1))

    def _assign(self, path: str, node: yaml.Node, where: Location) -> None:
        if not isinstance(node, yaml.MappingNode):  # scalars and lists replace, dicts merge
            self.forget_below(path)
        self.locations[path] = where
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                self._assign(
                    _join(path, str(key_node.value)), value_node, Location(where.file, key_node.start_mark.line + 1)
                )
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self._assign(_join(path, str(index)), item, Location(where.file, item.start_mark.line + 1))

    def set_override(self, path: str) -> None:
        """A command-line override set (or deleted) `path` and everything below it."""
        self.forget_below(path)
        self.locations[path] = Location(OVERRIDE_SOURCE)

    def forget_below(self, path: str) -> None:
        prefix = path + "."
        for key in [k for k in self.locations if k.startswith(prefix)]:
            del self.locations[key]

    def set_by(self, path: str) -> Location | None:
        """Where `path` itself was set: its own entry, or an override of a parent."""
        if path in self.locations:
            return self.locations[path]
        while "." in path:
            path = path.rpartition(".")[0]
            where = self.locations.get(path)
            if where is not None and where.file == OVERRIDE_SOURCE:
                return where
        return None

    def locate(self, path: str) -> Location | None:
        """Where `path` was set, else where the first key below it was, else its nearest parent."""
        if path not in self.locations:
            below = next((loc for key, loc in self.locations.items() if key.startswith(path + ".")), None)
            if below is not None:
                return below
        while path:
            if path in self.locations:
                return self.locations[path]
            path = path.rpartition(".")[0]
        return None

    def children(self, path: str) -> list[str]:
        """The keys set directly below `path` ('' for the top level)."""
        prefix = path + "." if path else ""
        depth = prefix.count(".")
        return sorted(
            {k[len(prefix):].split(".")[0] for k in self.locations if k.startswith(prefix) and k.count(".") >= depth}
        )


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key
