"""Triton model repository: `triton/<model>/config.pbtxt` for recipes served by Triton.

config.pbtxt is protobuf text format (Triton's ModelConfig), the one artifact rendered
from a Jinja2 template. What it says is the contract of framework/contracts/triton.py:
`model_config` decides every value and `render` lays the typed config out; the runtime
writes the same text into the model repositories it fills.
"""

from __future__ import annotations

from framework.contracts.triton import CONFIG_FILE, model_config, model_name, render as render_config
from framework.targets import Artifact
from framework.targets.common import header


def render(recipe) -> list[Artifact]:
    if recipe.serving.backend != "triton":
        return []
    text = render_config(model_config(recipe), header(recipe))
    return [Artifact(f"triton/{model_name(recipe)}/{CONFIG_FILE}", text)]
