"""A recipe as MLflow params: dotted keys, sorted, in MLflow's limits. Kept free of
mlflow so that the step cache can compare a finished run's params with a recipe
without importing it (tests pin the limits to mlflow's own)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

MAX_PARAM_VAL_LENGTH = 6000  # mlflow.utils.validation's
MAX_ENTITY_KEY_LENGTH = 250


def param_text(value: Any) -> str:
    # Strings as they are; the rest as in the resolved YAML/JSON (true, null, 0.5).
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def param_key(key: str) -> str:
    # MLflow accepts alphanumerics, _ - . / : and space in keys; anything else (a label
    # key, an env var name with odd characters) becomes "_" rather than failing a run.
    return re.sub(r"[^\w./: -]", "_", key)


def flatten(tree: Mapping[str, Any]) -> dict[str, str]:
    """Lists of scalars are joined with "," (readable in the UI: `evaluation.metrics =
    accuracy,f1`); lists holding mappings are indexed (`data.checks.0.column`); empty
    containers and None are kept, so every key of the recipe shows. Values are cut to
    MLflow's param length limit, which would otherwise reject the whole batch."""
    flat: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping) and value:
            for key, item in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), item)
        elif isinstance(value, list) and any(isinstance(v, (Mapping, list)) for v in value):
            for index, item in enumerate(value):
                walk(f"{prefix}.{index}", item)
        elif isinstance(value, list):
            flat[prefix] = ",".join(param_text(v) for v in value) if value else "[]"
        elif isinstance(value, Mapping):
            flat[prefix] = "{}"
        else:
            flat[prefix] = param_text(value)

    walk("", tree)
    return {param_key(k)[:MAX_ENTITY_KEY_LENGTH]: v[:MAX_PARAM_VAL_LENGTH] for k, v in sorted(flat.items())}
