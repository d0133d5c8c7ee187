"""The runtime's side of Triton's model configuration (framework/contracts/triton.py):
writing a model's config.pbtxt into a model repository the runtime fills (training's
local apply, the Triton pod's init container, a rollout's repository), as `mlops
generate` renders it. The runtime serves with the typed config (`model_config(recipe)`)
and never reads config.pbtxt back.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from framework.contracts.triton import CONFIG_FILE, config_text


def write_config(model_dir: Path, recipe, versions: Iterable[int | str] | None = None) -> Path:
    """`<model_dir>/config.pbtxt` of the recipe (`versions`: serving exactly those),
    written under a hidden name and renamed, so Triton never reads half a file."""
    path = Path(model_dir) / CONFIG_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{CONFIG_FILE}.partial")
    partial.write_text(config_text(recipe, versions), encoding="utf-8")
    partial.replace(path)
    return path


__all__ = ["write_config"]
