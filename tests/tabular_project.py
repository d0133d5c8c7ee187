"""A tiny tabular project for the data checks: the repository's recipe groups plus one
recipe of our own, `tiers` (income, region -> bronze/silver/gold), and its data file."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from tests.conftest import copy_project

DEFAULTS = """defaults:
  - model: mlp
  - training: ray_cpu
  - serving: triton
  - rollout: direct
  - monitoring: standard
  - deploy: k8s
  - env: dev
  - _self_

"""

TIERS: dict[str, Any] = {
    "name": "tiers",
    "data": {
        "source": {"uri": "data/tiers.csv"},
        "target": "tier",
        "features": ["income", "region"],
        "categorical": ["region"],
        "expectations": {"columns": {"region": {"in_set": ["north", "south"]},
                                     "tier": {"in_set": ["bronze", "silver", "gold"]}}},
    },
    "model": {"num_classes": 3},
    "evaluation": {"metrics": ["accuracy"]},
}


def tiers_frame(rows: int = 60) -> pd.DataFrame:
    """Every class and region, evenly; income a plain number column."""
    return pd.DataFrame({
        "income": [1000.0 + 25 * i for i in range(rows)],
        "region": [("north", "south")[i % 2] for i in range(rows)],
        "tier": [("bronze", "silver", "gold")[i % 3] for i in range(rows)],
    })


def tiers_recipe(**data_changes: Any) -> dict[str, Any]:
    """TIERS with data keys replaced (e.g. missing="error", target="price")."""
    recipe = copy.deepcopy(TIERS)
    recipe["data"].update(data_changes)
    return recipe


def write_project(tmp_path: Path, frame: pd.DataFrame | str, recipe: dict[str, Any] | None = None) -> Path:
    """A project under tmp_path whose recipe (default TIERS) reads `frame` (or this CSV text)."""
    recipe = recipe or TIERS
    tmp_path.mkdir(parents=True, exist_ok=True)
    root = copy_project(tmp_path, ("recipes",))
    (root / "recipes" / f"{recipe['name']}.yaml").write_text(DEFAULTS + yaml.safe_dump(recipe, sort_keys=False))
    path = root / recipe["data"]["source"]["uri"]
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(frame, str):
        path.write_text(frame)
    elif path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return root
