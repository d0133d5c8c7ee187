"""The train/validation split: deterministic for a seed, stratified on the target for
classifiers, so every run and every machine sees the same rows."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from framework.errors import Location, Problem
from framework.runtime.training.data_report import DataError
from framework.runtime.training.data_values import canonical, rows_text, value_text

def _allocate(sizes: np.ndarray, fraction: float) -> np.ndarray:
    """Validation rows per class: round(fraction * n) in total, spread by largest remainder,
    at least 1 and at most size - 1 per class so both parts see every class."""
    quota = sizes * fraction
    take = np.floor(quota).astype(int)
    total = int(round(fraction * sizes.sum()))
    # Ties break by class order (stable argsort), so the same data always splits the same.
    for i in np.argsort(-(quota - take), kind="stable")[: max(total - int(take.sum()), 0)]:
        take[i] += 1
    return np.clip(take, 1, sizes - 1)


def _classification(recipe: Any) -> bool:
    model = recipe.model
    return getattr(model, "kind", None) == "tabular" and getattr(model, "task", None) == "classification"


def split(recipe: Any, df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(train, validation): the same rows every run for a given seed; both non-empty.

    Stratified on the target when split.stratify and the model is a tabular classifier.
    Rows keep the file's order and index inside each part (shuffling is the loader's job).
    """
    data = recipe.data
    cfg = data.split
    n = len(df)
    if n < 2:
        raise DataError([Problem(Location(data.source.uri), "data.split",
                                 f"needs at least 2 rows to split, the data has {n}")])
    rng = np.random.default_rng(cfg.seed)
    if cfg.stratify and _classification(recipe):
        try:
            codes, classes = pd.factorize(df[data.target], sort=True, use_na_sentinel=False)
        except TypeError:  # labels of mixed types do not sort; their text does, just as stably
            codes, classes = pd.factorize(df[data.target].map(canonical), sort=True, use_na_sentinel=False)
        sizes = np.bincount(codes, minlength=len(classes))
        small = [(c, int(s)) for c, s in zip(classes, sizes) if s < 2]
        if small:
            names = ", ".join(f"{value_text(c)} ({rows_text(s)})" for c, s in small)
            raise DataError([Problem(Location(data.source.uri), "data.split.stratify",
                                     f"class {names} is too small to stratify: each class needs at least 2 rows, "
                                     "one per part; add data or set data.split.stratify: false")])
        take = _allocate(sizes, cfg.validation)
        chosen = [rng.permutation(np.flatnonzero(codes == k))[:t] for k, t in enumerate(take)]
        val_pos = np.sort(np.concatenate(chosen))
    else:
        n_val = min(max(int(round(cfg.validation * n)), 1), n - 1)
        val_pos = np.sort(rng.permutation(n)[:n_val])
    mask = np.zeros(n, dtype=bool)
    mask[val_pos] = True
    return df.iloc[~mask], df.iloc[mask]
