"""What a training subprocess of the tests gets: churn composed with `overrides`, its
first `rows` rows split 80/20 and encoded, pickled for `train_on_ray`."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd

from framework import api
from tests.conftest import REPO


def training_payload(tmp_path: Path, overrides: list[str], rows: int, run: str) -> Path:
    from framework.runtime.training.features import FeaturePipeline

    recipe = api.load_recipe("churn", overrides=overrides, project=REPO).recipe
    frame = pd.read_csv(REPO / "data" / "churn.csv").head(rows)
    train, val = frame.iloc[: rows * 4 // 5], frame.iloc[rows * 4 // 5:]
    pipeline = FeaturePipeline.fit(recipe, train)
    arrays = {
        "x_train": pipeline.transform(train), "y_train": pipeline.targets(train).astype(np.int64),
        "x_val": pipeline.transform(val), "y_val": pipeline.targets(val).astype(np.int64),
    }
    path = tmp_path / "payload.pkl"
    path.write_bytes(pickle.dumps({"recipe": recipe.model_dump(mode="json"), "pipeline": pipeline.to_dict(),
                                   "arrays": arrays, "storage": tmp_path / "ray-storage", "run": run}))
    return path
