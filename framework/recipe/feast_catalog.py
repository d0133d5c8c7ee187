"""What a Feast feature repository defines (entities, views and their features), read
without importing Feast, and the checks of `data.source.feast` against it.

`validate` reads the repository's Python files with `ast`: the literal `Entity(...)`,
`FeatureView(...)` and `Field(...)` calls that Feast repositories are made of. Where a
name is not a literal (built in a loop, read from the environment) the catalog says it is
incomplete and only what it surely knows is checked; `apply` then checks the same rules
against the objects Feast itself parsed (runtime/feast/), with the same messages."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

from framework.recipe.reads import record_file, record_tree
from framework.recipe.suggest import did_you_mean, one_of

KEY = "data.source.feast"


@dataclass(frozen=True)
class View:
    name: str
    join_keys: tuple[str, ...]  # of its entities, in order
    features: tuple[str, ...] | None  # None: the schema is not literal


@dataclass
class Catalog:
    views: dict[str, View] = field(default_factory=dict)
    complete: bool = True  # every view's name was a literal


def problems(feast, data, catalog: Catalog, repo_label: str) -> list[tuple[str, str]]:
    """(key, message) for each way `data.source.feast` (and `data.features`) disagree with
    the repository's definitions."""
    view = catalog.views.get(feast.feature_view)
    if view is None:
        if not catalog.complete:
            return []
        near = did_you_mean(feast.feature_view, catalog.views)
        return [(f"{KEY}.feature_view", f"no feature view '{feast.feature_view}' in {repo_label}{near}; "
                                        f"it defines: {one_of(catalog.views)}")]
    found: list[tuple[str, str]] = []
    if not view.join_keys:
        found.append((f"{KEY}.feature_view", f"feature view '{view.name}' has no entity, so its rows cannot be "
                                             "joined onto entity rows: give it entities=[...]"))
    elif feast.entity_key is not None and feast.entity_key not in view.join_keys:
        found.append((f"{KEY}.entity_key", f"'{feast.entity_key}' is not a join key of feature view '{view.name}'"
                                           f"{did_you_mean(feast.entity_key, view.join_keys)}; its entities join on: "
                                           f"{', '.join(view.join_keys)}"))
    if view.features is None:
        return found
    if feast.features != "all":
        for name in feast.features:
            if name not in view.features:
                found.append((f"{KEY}.features", f"feature '{name}' is not in feature view '{view.name}'"
                                                 f"{did_you_mean(name, view.features)}; it has: {', '.join(view.features)}"))
        if found:
            return found
    read = set(view.features if feast.features == "all" else feast.features)
    missing = [f for f in data.features if f not in read]
    unused = [f for f in (view.features if feast.features == "all" else feast.features) if f not in data.features]
    if missing:
        found.append(("data.features", f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not read from "
                                       f"feature view '{view.name}'{did_you_mean(missing[0], read)}: the features "
                                       f"come from data.source.feast.features ({one_of(read)})"))
    if unused:
        found.append((f"{KEY}.features", f"{', '.join(unused)} of feature view '{view.name}' "
                                         f"{'is' if len(unused) == 1 else 'are'} read but not in data.features: list "
                                         "them there, or name only the features the model reads"))
    return found


# ---------------------------------------------------------------- reading the repository


def read_repo(repo: Path) -> Catalog:
    """The views the repository's .py files define (Feast's rules: every .py file but
    __init__.py, outside .venv/.git/__pycache__)."""
    entities: dict[str, tuple[str, ...]] = {}  # variable or entity name -> join keys
    calls: list[ast.Call] = []
    catalog = Catalog()
    record_tree(repo)
    for file in sorted(repo.rglob("*.py")):
        parts = set(file.relative_to(repo).parts)
        if file.name == "__init__.py" or parts & {".venv", ".git", "__pycache__", ".ipynb_checkpoints"}:
            continue
        record_file(file)
        try:
            tree = ast.parse(file.read_text(encoding="utf-8"), str(file))
        except (SyntaxError, UnicodeDecodeError, OSError):
            catalog.complete = False  # Feast will say what is wrong when apply imports it
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and _called(node.value) == "Entity":
                keys = _entity_keys(node.value)
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        entities[target.id] = keys
                name = _literal(_argument(node.value, "name", 0))
                if isinstance(name, str):
                    entities[name] = keys
            if isinstance(node, ast.Call) and _called(node) == "FeatureView":
                calls.append(node)
    for call in calls:
        name = _literal(_argument(call, "name", None))
        if not isinstance(name, str):
            catalog.complete = False
            continue
        keys = _view_keys(call, entities)
        schema = _schema(call)  # a Field named as a join key is the entity's column, not a feature
        catalog.views[name] = View(name, keys, None if schema is None else tuple(f for f in schema if f not in keys))
    return catalog


def _called(call: ast.Call) -> str | None:
    func = call.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def _argument(call: ast.Call, keyword: str, position: int | None) -> ast.AST | None:
    for kw in call.keywords:
        if kw.arg == keyword:
            return kw.value
    if position is not None and len(call.args) > position:
        return call.args[position]
    return None


def _literal(node: ast.AST | None):
    try:
        return ast.literal_eval(node) if node is not None else None
    except (ValueError, SyntaxError):
        return None


def _entity_keys(call: ast.Call) -> tuple[str, ...]:
    keys = _literal(_argument(call, "join_keys", None))
    if isinstance(keys, list) and all(isinstance(k, str) for k in keys):
        return tuple(keys)
    name = _literal(_argument(call, "name", 0))
    return (name,) if isinstance(name, str) else ()  # Feast's default join key is the entity's name


def _view_keys(call: ast.Call, entities: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
    listed = _argument(call, "entities", None)
    if not isinstance(listed, (ast.List, ast.Tuple)):
        return ()
    keys: list[str] = []
    for item in listed.elts:
        ref = item.id if isinstance(item, ast.Name) else _literal(item)
        keys.extend(entities.get(ref, (ref,) if isinstance(ref, str) else ()))
    return tuple(keys)


def _schema(call: ast.Call) -> tuple[str, ...] | None:
    schema = _argument(call, "schema", None)
    if not isinstance(schema, (ast.List, ast.Tuple)):
        return None
    names: list[str] = []
    for item in schema.elts:
        if not (isinstance(item, ast.Call) and _called(item) == "Field"):
            return None
        name = _literal(_argument(item, "name", None))
        if not isinstance(name, str):
            return None
        names.append(name)
    return tuple(names)
