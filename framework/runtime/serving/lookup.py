"""Online lookups for the serving app: a request may carry entity ids (a BYTES input
named after the entity key, e.g. `customer_id`) instead of feature values. The app reads
the view's latest values from the online store (`get_online_features`), builds the
model's feature tensors from them, and infers; an id with no row is a 404 naming it."""

from __future__ import annotations

import asyncio
import math
from dataclasses import replace
from pathlib import Path

import numpy as np

from framework.errors import MlopsError, Problem
from framework.runtime.features.join import entity_key, feature_names, registered_view
from framework.runtime.features.store import KEY

MAX_NAMED = 10  # ids named in a 404; the rest are counted
MAX_IDS_PER_READ = 256  # ids read in one call at most


class OnlineLookup:
    """Entity ids -> the model's input tensors, from the recipe's online store."""

    def __init__(self, recipe, root: Path, config):
        from framework.contracts.triton import ModelTensor
        from framework.runtime.serving.repository import NUMPY_DTYPES

        self.store = registered_view(recipe, root)
        feast = recipe.data.source.feast
        self.view = feast.feature_view
        view = self.store.get_feature_view(self.view)
        if not view.materialization_intervals:
            raise MlopsError([Problem(None, f"{KEY}.online_store", f"feature view '{self.view}' was never "
                                      f"materialised into the {feast.online_store.type} online store, so no entity "
                                      "can be looked up: run `mlops apply` (its materialize step) first")])
        self.key = entity_key(recipe, self.store)
        names = feature_names(recipe, self.store)
        self.refs = [f"{self.view}:{n}" for n in names]
        inputs = {t.name: t for t in config.input}
        self.text = {n for n in names if n in inputs and inputs[n].data_type == "TYPE_STRING"}
        self.inputs = [n for n in inputs if n in names]  # the model's inputs, in its order
        self.dtypes = {n: NUMPY_DTYPES.get(inputs[n].datatype, np.float32) for n in self.inputs}
        entity = ModelTensor(self.key, "TYPE_STRING", (1,) if config.batching else (1, 1))
        self.request_config = replace(config, input=(entity,))  # what a request by entity id looks like
        self._pending: list[tuple[np.ndarray, asyncio.Future]] = []
        self._drainer: asyncio.Task | None = None

    def features(self, ids: np.ndarray) -> dict[str, np.ndarray]:
        """The model's inputs for these ids (rows in order); raises HttpError 404 for ids
        the online store has no row of."""
        keys = _keys(ids)
        return self._tensors(self._fetch(keys), 0, keys, ids.shape)

    async def lookup(self, ids: np.ndarray) -> dict[str, np.ndarray]:
        """`features`, with the ids of requests that arrive while a lookup runs read in
        one `get_online_features` call: its fixed cost (about 0.15 ms) dominates one id's."""
        future = asyncio.get_running_loop().create_future()
        self._pending.append((ids, future))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._pending:
            batch, taken = [], 0
            while self._pending and (not batch or taken + self._pending[0][0].size <= MAX_IDS_PER_READ):
                batch.append(self._pending.pop(0))
                taken += batch[-1][0].size
            keys = [k for ids, _ in batch for k in _keys(ids)]
            try:
                values = await asyncio.to_thread(self._fetch, keys)
            except Exception as exc:  # the store failed: every waiting request gets the error
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            start = 0
            for ids, future in batch:
                try:
                    result = self._tensors(values, start, keys[start:start + ids.size], ids.shape)
                except Exception as exc:  # a 404 for this request's missing ids only
                    result, error = None, exc
                else:
                    error = None
                start += ids.size
                if not future.done():
                    future.set_exception(error) if error is not None else future.set_result(result)

    def _fetch(self, keys: list[str]) -> dict[str, list]:
        # no `quietly` here: it swaps the process's sys.stdout, which worker threads must not do
        found = self.store.get_online_features(features=self.refs, entity_rows=[{self.key: k} for k in keys])
        return found.to_dict()

    def _tensors(self, values: dict[str, list], start: int, keys: list[str], shape) -> dict[str, np.ndarray]:
        from framework.runtime.serving.protocol import HttpError

        stop = start + len(keys)
        missing = [k for row, k in enumerate(keys, start) if all(values[n][row] is None for n in self.inputs)]
        if missing:
            named = ", ".join(missing[:MAX_NAMED]) + (f" and {len(missing) - MAX_NAMED} more" if len(missing) > MAX_NAMED else "")
            raise HttpError(404, f"no online features for {self.key} {named} in feature view '{self.view}'")
        out: dict[str, np.ndarray] = {}
        for name in self.inputs:
            column = values[name][start:stop]
            if name in self.text:
                out[name] = np.array(["" if v is None else str(v) for v in column], dtype=object).reshape(shape)
            else:
                out[name] = np.array([math.nan if v is None else v for v in column], dtype=self.dtypes[name]).reshape(shape)
        return out


def _keys(ids: np.ndarray) -> list[str]:
    return [i.decode() if isinstance(i, bytes) else str(i) for i in ids.reshape(-1)]
