"""The tensor contract of a tabular model: what the exported model takes and returns.

One function decides it, so the ONNX/TorchScript exporter, Triton's config.pbtxt and
the serving app agree on names, dtype and widths. Pure and import-light (no torch,
numpy or pandas): targets call it while generating.

Input layout (one FP32 row per example, batch dimension first):
  1. every numeric feature (a feature not in `data.categorical`), in `data.features`
     order, its value as is;
  2. then every categorical feature, in `data.features` order, one-hot encoded: one
     column per category of `data.expectations.columns.<feature>.in_set`, in in_set
     order (1.0 for the row's category, 0.0 for the others).
`data.features` is "the columns fed to the model, in order", so it alone fixes the
order; reordering `data.categorical` changes nothing.

Tensor names follow the serving format: ONNX graphs name their tensors, so we pick
readable names ("features" -> "probabilities" or "prediction"); Triton's libtorch
backend binds TorchScript tensors by position and wants "INPUT__0" / "OUTPUT__0".
Output: classification gives class probabilities (width `model.num_classes`),
regression one prediction (width 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from framework.errors import Problem, RecipeError

Category = Union[str, int, float, bool]

DTYPE = "FP32"  # KServe v2 / Triton datatype name; Triton's config enum is TYPE_FP32

# serving.format -> (input name, {task: output name})
TENSOR_NAMES: dict[str, tuple[str, dict[str, str]]] = {
    "onnx": ("features", {"classification": "probabilities", "regression": "prediction"}),
    "torchscript": ("INPUT__0", {"classification": "OUTPUT__0", "regression": "OUTPUT__0"}),
}


@dataclass(frozen=True)
class Tensor:
    """One tensor of a batched model: shape [batch, width]."""

    name: str
    width: int
    dtype: str = DTYPE

    @property
    def shape(self) -> tuple[int, int]:
        """Full shape with a dynamic batch dimension (-1), as ONNX and Triton write it."""
        return (-1, self.width)


@dataclass(frozen=True)
class Signature:
    """Input and output tensors of a tabular model, and what each input column means."""

    input: Tensor
    output: Tensor
    # (feature, category) per input column; category None: a numeric feature.
    layout: tuple[tuple[str, Category | None], ...]
    task: str

    @property
    def columns(self) -> tuple[str, ...]:
        """A readable name per input column: `tenure_months`, `contract=one_year`."""
        return tuple(feature if category is None else f"{feature}={category}" for feature, category in self.layout)


def feature_layout(data) -> tuple[tuple[str, Category | None], ...]:
    """The input columns of a recipe's `data` section (see the module docstring)."""
    categorical = set(data.categorical)
    numeric = [(feature, None) for feature in data.features if feature not in categorical]
    problems: list[Problem] = []
    one_hot: list[tuple[str, Category]] = []
    for feature in data.features:
        if feature not in categorical:
            continue
        key = f"data.expectations.columns.{feature}.in_set"
        expectation = data.expectations.columns.get(feature)
        categories = expectation.in_set if expectation is not None else None
        if not categories:
            problems.append(
                Problem(
                    None,
                    key,
                    f"data.categorical '{feature}' needs {key} (its categories): the model's input "
                    "width counts one one-hot column per category",
                )
            )
            continue
        # Equal values would get two columns for one category (and 1 == True == 1.0).
        repeated = [value for index, value in enumerate(categories) if value in categories[:index]]
        if repeated:
            problems.append(
                Problem(None, key, f"{key} lists {repeated[0]!r} more than once; each category is one input column")
            )
            continue
        one_hot.extend((feature, category) for category in categories)
    if problems:
        raise RecipeError(problems)
    return (*numeric, *one_hot)


def model_signature(recipe) -> Signature:
    """The input and output tensors of a tabular recipe's exported model."""
    if recipe.model.kind != "tabular" or recipe.data is None:
        message = f"a tensor signature needs a tabular model with data, not model.kind {recipe.model.kind}"
        raise RecipeError([Problem(None, "model.kind", message)])
    layout = feature_layout(recipe.data)
    input_name, output_names = TENSOR_NAMES[recipe.serving.format]
    task = recipe.model.task
    width = recipe.model.num_classes if task == "classification" else 1
    return Signature(
        input=Tensor(input_name, len(layout)),
        output=Tensor(output_names[task], width),
        layout=layout,
        task=task,
    )
