"""The point-in-time join that feeds training: for every entity/label row, the view's
feature values as they were at the row's timestamp (`get_historical_features`), never a
later row. The result keeps the label rows' order, so the split is the same every run."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from framework.errors import Location, MlopsError, Problem
from framework.recipe.suggest import did_you_mean
from framework.runtime.features.store import KEY, open_store, repo_dir

ROW = "__mlops_row"


def feature_names(recipe, store) -> list[str]:
    feast = recipe.data.source.feast
    if feast.features == "all":
        view = store.get_feature_view(feast.feature_view)
        return [f.name for f in view.features]
    return list(feast.features)


def entity_key(recipe, store) -> str:
    feast = recipe.data.source.feast
    if feast.entity_key:
        return feast.entity_key
    view = store.get_feature_view(feast.feature_view)
    keys = [column.name for column in view.entity_columns]
    return keys[0] if keys else view.entities[0]


def registered_view(recipe, root: Path):
    """The store, once the view is in its registry (apply's `feast apply` step puts it there)."""
    store = open_store(recipe, root)
    feast = recipe.data.source.feast
    try:
        store.get_feature_view(feast.feature_view)
    except Exception:  # FeatureViewNotFoundException, or a registry that does not exist yet
        raise MlopsError([Problem(None, f"{KEY}.feature_view", f"feature view '{feast.feature_view}' is not in the "
                                 f"Feast registry {feast.registry} of {repo_dir(recipe, root)}: run `mlops apply` "
                                 "(its feast-apply step registers it)")]) from None
    return store


def join_features(recipe, root: Path, rows: pd.DataFrame) -> tuple[pd.DataFrame, float]:
    """(the label rows with the view's features joined on, seconds the join took)."""
    feast = recipe.data.source.feast
    where = Location(recipe.data.source.uri)
    store = registered_view(recipe, root)
    key, stamp = entity_key(recipe, store), feast.timestamp_column
    for column, what in ((key, f"{KEY}.entity_key"), (stamp, f"{KEY}.timestamp_column")):
        if column not in rows.columns:
            raise MlopsError([Problem(where, what, f"the entity rows have no column '{column}'"
                                     f"{did_you_mean(column, rows.columns)}; they have: {', '.join(rows.columns)}")])
    entity = rows.copy()
    try:
        entity[stamp] = pd.to_datetime(entity[stamp], utc=True)
    except (ValueError, TypeError) as exc:
        raise MlopsError([Problem(where, f"{KEY}.timestamp_column",
                                 f"column '{stamp}' is not a timestamp: {str(exc).splitlines()[0]}")]) from None
    entity[key] = entity[key].astype(str)
    entity[ROW] = range(len(entity))
    names = feature_names(recipe, store)
    started = time.perf_counter()
    joined = store.get_historical_features(entity_df=entity, features=[f"{feast.feature_view}:{n}" for n in names]).to_df()
    seconds = time.perf_counter() - started
    joined = joined.sort_values(ROW).drop(columns=[ROW]).reset_index(drop=True)
    joined[stamp] = rows[stamp].to_numpy()  # as the file wrote it
    unmatched = int(joined[names].isna().all(axis=1).sum())
    if unmatched == len(joined):
        raise MlopsError([Problem(where, f"{KEY}.feature_view", f"the point-in-time join is empty: none of the "
                                 f"{len(joined)} label rows matched a row of feature view '{feast.feature_view}' "
                                 f"(same {key}, at or before its {stamp}, within the view's ttl)")])
    return joined, seconds
