"""Feast: the `feature_store.yaml` of a recipe and environment, built once from
`data.source.feast`. `generate` writes it (generated/<recipe>/<env>/feast/, and into the
materialisation CronJob's ConfigMap); the runtime builds its FeatureStore from the same
mapping (runtime/features/store.py). Secrets stay references: the file names an
environment variable (`${FEAST_REDIS_CONNECTION_STRING}`), which Feast expands when it
loads the file and which the pods fill from the Kubernetes Secret."""

from __future__ import annotations

from typing import Any

FILE_NAME = "feature_store.yaml"
MOUNT_DIR = "/etc/feast"  # where the CronJob's ConfigMap puts feature_store.yaml
PROVIDER = "local"
ENTITY_KEY_SERIALIZATION_VERSION = 3  # Feast 0.67's current one; older ones are deprecated
REDIS_ENV = "FEAST_REDIS_CONNECTION_STRING"
POSTGRES_PASSWORD_ENV = "FEAST_POSTGRES_PASSWORD"
IMAGE = "quay.io/feastdev/feature-server:0.67.0"  # the pinned Feast release's own image


def enabled(recipe) -> bool:
    """Whether the recipe reads its features from Feast (LLM recipes have no data)."""
    data = recipe.data
    return data is not None and data.source.feast is not None


def project_name(recipe) -> str:
    """The Feast project: `data.source.feast.project`, else the recipe name with `_` for
    `-` (Feast refuses hyphens with an sqlite online store: they become table names; one
    name in every env keeps dev's project the same as staging's)."""
    return recipe.data.source.feast.project or recipe.name.replace("-", "_")


def secret_env(recipe) -> dict[str, Any]:
    """Environment variable -> the SecretRef that fills it, for the online store."""
    store = recipe.data.source.feast.online_store
    if store.type == "redis":
        return {REDIS_ENV: store.connection_string}
    if store.type == "postgres":
        return {POSTGRES_PASSWORD_ENV: store.password}
    return {}


def online_store(recipe) -> dict[str, Any]:
    store = recipe.data.source.feast.online_store
    if store.type == "sqlite":
        return {"type": "sqlite", "path": store.path}
    if store.type == "redis":
        return {"type": "redis", "redis_type": store.redis_type, "connection_string": f"${{{REDIS_ENV}}}"}
    return {"type": "postgres", "host": store.host, "port": store.port, "database": store.database,
            "db_schema": store.db_schema, "user": store.user, "password": f"${{{POSTGRES_PASSWORD_ENV}}}",
            "sslmode": store.sslmode}


def feature_store_config(recipe) -> dict[str, Any]:
    """feature_store.yaml as data: the project, the registry, a file offline store (the
    views' FileSources) and the recipe's online store."""
    feast = recipe.data.source.feast
    return {
        "project": project_name(recipe),
        "provider": PROVIDER,
        "registry": feast.registry,
        "online_store": online_store(recipe),
        "offline_store": {"type": "file"},
        "entity_key_serialization_version": ENTITY_KEY_SERIALIZATION_VERSION,
    }
