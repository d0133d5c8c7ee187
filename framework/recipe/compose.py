"""Compose a recipe with Hydra and record where every key came from.

Hydra composition (hydra_engine.py) -> `OmegaConf.to_container(resolve=True)` ->
plain dict (validated elsewhere). No global Hydra state is involved, so the API can
be called any number of times in one process, even inside a Hydra application.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from framework.errors import OVERRIDE_SOURCE, Location, Problem, RecipeError
from framework.project import Project, display_path
from framework.recipe.hydra_engine import HydraComposition
from framework.recipe.provenance import Provenance, parse_yaml_nodes, yaml_problem
from framework.recipe.reads import record_file, record_files, record_tree
from framework.recipe.source import RecipeSource, locate
from framework.recipe.suggest import did_you_mean, one_of


@dataclass(frozen=True)
class Composed:
    source: RecipeSource
    overrides: tuple[str, ...]
    config: dict[str, Any]
    provenance: Provenance


def compose_recipe(
    project: Project, recipe: str, env: str | None = None, overrides: Sequence[str] = ()
) -> Composed:
    source = locate(project, recipe)
    record_file(source.file)
    record_tree(source.config_dir)  # groups, options and optional files: what exists matters
    _check_primary_file(source.file)
    overrides = tuple(overrides) + ((f"env={env}",) if env else ())
    parsed = _parse_overrides(overrides)
    groups = set(source.groups())
    _check_group_overrides(source, parsed, groups)

    provenance: Provenance | None = None
    try:
        composition = HydraComposition(source.config_dir, source.name, overrides)
        provenance = _file_provenance(source, composition.defaults)
        cfg = composition.merge()
        record_files(composition.files())
    except RecipeError:
        raise
    except yaml.MarkedYAMLError as exc:
        raise RecipeError(_find_yaml_error(source, exc)) from None
    except Exception as exc:  # Hydra's and OmegaConf's errors, mapped to file:line
        raise RecipeError([_composition_problem(source, exc, provenance)]) from None

    for override in parsed:
        if override.key_or_group not in groups:
            provenance.set_override(_override_path(override))
    return Composed(source, overrides, _resolve(cfg, provenance), provenance)


def _check_primary_file(file: Path) -> None:
    where = display_path(file)
    root = parse_yaml_nodes(file)
    if root is None:
        raise RecipeError([Problem(Location(where, 1), "", "recipe is empty: it needs a defaults list and a name")])
    if not isinstance(root, yaml.MappingNode):
        kind = "a list" if isinstance(root, yaml.SequenceNode) else "a single value"
        raise RecipeError(
            [Problem(Location(where, root.start_mark.line + 1), "", f"a recipe must be a mapping of keys, found {kind}")]
        )


def _parse_overrides(overrides: Sequence[str]) -> list[Any]:
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException

    parser = OverridesParser.create()
    parsed = []
    for text in overrides:
        try:
            parsed.extend(parser.parse_overrides([text]))
        except OverrideParseException as exc:
            first = str(exc).splitlines()[0]
            raise RecipeError(
                [Problem(Location(OVERRIDE_SOURCE), text, f"cannot parse override ({first}); write key=value, e.g. training.epochs=3")]
            ) from None
    return parsed


def _check_group_overrides(source: RecipeSource, parsed: list[Any], groups: set[str]) -> None:
    for override in parsed:
        group = override.key_or_group
        if group not in groups or override.is_delete() or override.package:
            continue
        value, options = override.value(), source.options(group)
        chosen = value if isinstance(value, list) else [value]  # Hydra merges a list of options
        if not all(isinstance(option, str) for option in chosen):
            raise RecipeError(
                [Problem(Location(OVERRIDE_SOURCE), group,
                         f"'{group}' is a group: choose one of its options ({one_of(options)}), not a value")]
            )
        for option in chosen:
            if option not in options:
                raise RecipeError([Problem(Location(OVERRIDE_SOURCE), group, _unknown_option(option, options))])


def _unknown_option(option: str, options: list[str]) -> str:
    return f"unknown option '{option}'{did_you_mean(option, options)}; options: {one_of(options)}"


def _override_path(override: Any) -> str:
    return override.key_or_group if not override.package else f"{override.package}.{override.key_or_group}"


def _file_provenance(source: RecipeSource, defaults: list[Any]) -> Provenance:
    provenance = Provenance()
    for entry in defaults:
        path = entry.config_path
        if path is None or (entry.package or "").split(".")[0] == "hydra" or path.startswith("hydra/"):
            continue
        file = source.config_dir / f"{path}.yaml"
        if not file.is_file():
            continue
        node = parse_yaml_nodes(file)
        if node is not None and not isinstance(node, yaml.MappingNode):
            raise RecipeError(
                [Problem(Location(display_path(file), node.start_mark.line + 1), entry.package or "",
                         "a recipe file must be a mapping of keys")]
            )
        if node is not None:
            provenance.set_tree(node, entry.package or "", display_path(file), skip_defaults=True)
    return provenance


def _resolve(cfg: Any, provenance: Provenance) -> dict[str, Any]:
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    except OmegaConfBaseException as exc:
        key = str(getattr(exc, "full_key", "") or "")
        raw = _raw_value(OmegaConf.to_container(cfg, resolve=False), key)
        raise RecipeError([Problem(provenance.locate(key), key, _interpolation_message(exc, raw))]) from None


def _raw_value(tree: Any, key: str) -> Any:
    for part in key.split(".") if key else []:
        part = part.split("[")[0]
        if isinstance(tree, dict) and part in tree:
            tree = tree[part]
        elif isinstance(tree, list) and part.isdigit() and int(part) < len(tree):
            tree = tree[int(part)]
    return tree


def _interpolation_message(exc: Exception, raw: Any) -> str:
    text = str(getattr(exc, "msg", exc)).splitlines()[0]
    shown = f"'{raw}': " if isinstance(raw, str) else ""
    env = re.search(r"Environment variable '([^']+)' not found", text)
    if env:
        name = env.group(1)
        return f"{shown}environment variable {name} is not set and has no default (write ${{oc.env:{name},default}})"
    if "Missing mandatory value" in text:
        return "required value missing (???): set it in the recipe or with an override"
    if "Recursive" in text or "recursion" in text.lower():
        return f"{shown}interpolation cycle: the value refers back to itself"
    if "Interpolation key" in text and "not found" in text:
        missing = re.search(r"Interpolation key '([^']+)' not found", text)
        return f"{shown}interpolation refers to '{missing.group(1) if missing else '?'}', which is not in the recipe"
    return f"{shown}cannot resolve interpolation: {text}"


def _find_yaml_error(source: RecipeSource, exc: yaml.MarkedYAMLError) -> list[Problem]:
    """Hydra's YAML errors carry no file name: find the file that fails the same way."""
    from omegaconf._utils import get_yaml_loader  # the loader Hydra reads files with

    for file in sorted(source.config_dir.rglob("*.yaml")):
        try:
            yaml.load(file.read_text(encoding="utf-8"), Loader=get_yaml_loader())
        except yaml.MarkedYAMLError as other:
            if _same_yaml_error(other, exc):
                return [yaml_problem(file, other)]
    return [yaml_problem(source.file, exc)]


def _same_yaml_error(a: yaml.MarkedYAMLError, b: yaml.MarkedYAMLError) -> bool:
    def key(e: yaml.MarkedYAMLError) -> tuple[Any, ...]:
        mark = e.problem_mark
        return (e.problem, e.context, mark.line if mark else None, mark.column if mark else None)

    return key(a) == key(b)


def _composition_problem(source: RecipeSource, exc: Exception, provenance: Provenance | None) -> Problem:
    from hydra.errors import MissingConfigException

    message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, MissingConfigException) and exc.missing_cfg_file:
        group, _, option = exc.missing_cfg_file.rpartition("/")
        where = _defaults_entry(source, group, option)
        if group and group not in source.groups():
            return Problem(where, f"defaults.{group}", f"unknown group '{group}'{did_you_mean(group, source.groups())}; groups: {one_of(source.groups())}")
        if group:
            return Problem(where, f"defaults.{group}", _unknown_option(option, source.options(group)))
        return Problem(where, "defaults", f"'{option}' not found in {display_path(source.config_dir)}")
    match = re.match(r"Could not override '([^']+)'", message)
    if match:
        key = match.group(1)
        parent, _, leaf = key.rpartition(".")
        if "No match in the defaults list" in str(exc):
            return Problem(Location(OVERRIDE_SOURCE), key, f"'{key}' is not in the recipe's defaults list; add the group with '+{key}=<option>'")
        siblings = provenance.children(parent) if provenance else []
        hint = did_you_mean(leaf, siblings, prefix=parent)
        return Problem(Location(OVERRIDE_SOURCE), key, f"no such key to override{hint}; to add a new key write '+{key}=...'")
    sweep = re.match(r"Ambiguous value for argument '([^']+)'", message)
    if sweep:
        return Problem(Location(OVERRIDE_SOURCE), sweep.group(1),
                       "several values make a sweep, which validates one recipe at a time: "
                       "give one value, or write a list in brackets, e.g. key=[1,2]")
    if "Could not append to config" in message:
        key = re.search(r"at '([^']+)'", str(exc))
        return Problem(Location(OVERRIDE_SOURCE), key.group(1) if key else "", "key already exists: drop the '+' to override it")
    return Problem(Location(display_path(source.file)), "", f"cannot compose recipe: {message}")


def _defaults_entry(source: RecipeSource, group: str, option: str) -> Location:
    """Where a defaults list names `group: option`: the command line or a file line."""
    files = [source.file, *sorted(p for p in source.config_dir.rglob("*.yaml") if p != source.file)]
    for file in files:
        try:
            root = yaml.compose(file.read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
        except yaml.YAMLError:
            continue
        if not isinstance(root, yaml.MappingNode):
            continue
        for key, value in root.value:
            if key.value == "defaults" and isinstance(value, yaml.SequenceNode):
                for item in value.value:
                    if _names(item, group, option):
                        return Location(display_path(file), item.start_mark.line + 1)
    return Location(OVERRIDE_SOURCE)


def _names(item: yaml.Node, group: str, option: str) -> bool:
    if isinstance(item, yaml.MappingNode):
        return any(
            str(k.value).split("@")[0].removeprefix("override ").strip().lstrip("/") == group and str(v.value) == option
            for k, v in item.value
        )
    return isinstance(item, yaml.ScalarNode) and str(item.value).lstrip("/") == f"{group}/{option}".lstrip("/")
