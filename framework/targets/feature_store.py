"""Feast target: `feast/feature_store.yaml` of each env of a recipe with `data.source.feast`.

The mapping is `contracts.feast.feature_store_config`, the one the runtime builds its
FeatureStore from, dumped like every other YAML artifact (header, sorted keys): the
online store is the env's (sqlite in dev, Redis or PostgreSQL settings in staging and
prod) and its secrets are `${FEAST_...}` references, which Feast expands from the
environment when it loads the file, never values. The materialisation CronJob mounts
these very bytes (its ConfigMap, k8s/feast-materialize.yaml), and `feast -f` reads the
file as it is on a workstation.
"""

from __future__ import annotations

from framework.contracts import feast
from framework.targets import Artifact, common

DIR = "feast"
PATH = f"{DIR}/{feast.FILE_NAME}"


def feature_store_yaml(recipe) -> str:
    """The file's text: what generate writes and the ConfigMap holds."""
    return common.yaml_text(recipe, feast.feature_store_config(recipe))


def render(recipe) -> list[Artifact]:
    if not feast.enabled(recipe):
        return []
    return [Artifact(PATH, feature_store_yaml(recipe))]
