"""The tensor contract of a tabular model: what the exported model takes and returns.

One function decides it, so the exporter, Triton's config.pbtxt, the serving app, the
rollout's traffic and the monitor agree on names, datatypes and shapes. Pure and
import-light (no torch, numpy or pandas): targets call it while generating.

Inputs: one tensor per raw feature column, in `data.features` order, named after the
column, shape [batch, 1]:
  - a numeric feature is FP32 (NaN, or null in the row-oriented JSON form, is a
    missing value the model fills with its training median);
  - a categorical feature (`data.categorical`) is BYTES (Triton's TYPE_STRING), its
    value as text; a value outside the categories seen in training encodes to "no
    category", as does the empty string.
Imputation, one-hot encoding and standardisation live inside the model file, so a
client sends the row as it is stored and never rebuilds the feature pipeline.

Outputs: a classifier returns `probabilities` [batch, num_classes] (FP32, in class
order) and `label` [batch, 1] (BYTES, the class name from training); a regressor returns
`prediction` [batch, 1] (FP32) in the target's own units.

Tensor names follow the serving format: ONNX graphs name their tensors freely; Triton's
libtorch backend binds TorchScript outputs by the `<name>__<index>` convention, so the
TorchScript file's outputs are `probabilities__0` and `label__1` (or `prediction__0`),
and its inputs are the forward() arguments, which must be Python identifiers.
"""

from __future__ import annotations

from dataclasses import dataclass

from framework.errors import Problem, RecipeError

NUMERIC = "FP32"  # KServe v2 / Triton datatype names; Triton's config enums are TYPE_FP32, TYPE_STRING
TEXT = "BYTES"

OUTPUTS: dict[str, tuple[str, ...]] = {"classification": ("probabilities", "label"), "regression": ("prediction",)}


@dataclass(frozen=True)
class Tensor:
    """One tensor of a batched model: shape [batch, width]."""

    name: str
    width: int
    dtype: str = NUMERIC

    @property
    def shape(self) -> tuple[int, int]:
        """Full shape with a dynamic batch dimension (-1), as ONNX and Triton write it."""
        return (-1, self.width)


@dataclass(frozen=True)
class Signature:
    """Input and output tensors of a tabular model."""

    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]
    task: str
    categorical: frozenset[str]

    @property
    def columns(self) -> tuple[str, ...]:
        """The raw feature columns, in input order."""
        return tuple(t.name for t in self.inputs)

    def output(self, role: str) -> Tensor:
        """The output playing `role` ("probabilities", "label" or "prediction")."""
        return self.outputs[OUTPUTS[self.task].index(role)]

    @property
    def scores(self) -> Tensor:
        """The numeric output: probabilities of a classifier, the prediction of a regressor."""
        return self.outputs[0]


def output_names(serving_format: str, task: str) -> tuple[str, ...]:
    roles = OUTPUTS[task]
    if serving_format == "torchscript":
        return tuple(f"{role}__{index}" for index, role in enumerate(roles))
    return roles


def model_signature(recipe) -> Signature:
    """The input and output tensors of a tabular recipe's exported model."""
    if recipe.model.kind != "tabular" or recipe.data is None:
        message = f"a tensor signature needs a tabular model with data, not model.kind {recipe.model.kind}"
        raise RecipeError([Problem(None, "model.kind", message)])
    data, task = recipe.data, recipe.model.task
    categorical = frozenset(data.categorical)
    inputs = tuple(Tensor(name, 1, TEXT if name in categorical else NUMERIC) for name in data.features)
    names = output_names(recipe.serving.format, task)
    if task == "classification":
        outputs = (Tensor(names[0], recipe.model.num_classes), Tensor(names[1], 1, TEXT))
    else:
        outputs = (Tensor(names[0], 1),)
    return Signature(inputs=inputs, outputs=outputs, task=task, categorical=categorical)


def reserved_column_problems(data) -> list[Problem]:
    """Feature names the contract cannot carry: an output's name would be two tensors."""
    reserved = {name for names in OUTPUTS.values() for name in names}
    return [
        Problem(None, "data.features", f"feature '{name}' has the name of a model output; rename the column")
        for name in data.features
        if name in reserved
    ]
