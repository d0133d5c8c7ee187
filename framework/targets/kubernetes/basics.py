"""What every pod of a recipe mounts or runs as: the ServiceAccount and the ConfigMap
holding the resolved recipe (the runtime's only input)."""

from __future__ import annotations

from typing import Any

from framework.targets import common


def service_account(recipe) -> dict[str, Any]:
    """The pods' identity. No pod needs the Kubernetes API: its token is not mounted."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": common.metadata(recipe, recipe.deploy.service_account, "identity"),
        "automountServiceAccountToken": False,
    }


def recipe_configmap(recipe) -> dict[str, Any]:
    """`recipe.resolved.yaml` with the very bytes `generate` writes next to the artifacts."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": common.metadata(recipe, common.names(recipe).recipe_configmap, "recipe"),
        "data": {common.RECIPE_FILE: common.resolved_recipe_yaml(recipe)},
    }
