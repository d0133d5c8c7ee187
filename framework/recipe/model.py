"""`model`: what is trained (tabular) or served (llm); `kind` selects the variant."""


from typing import Annotated, Literal, Union, get_args

from pydantic import Field

from framework.recipe.base import Section
from framework.recipe.types import PositiveInt, SecretRef

# The seed's methods, then marlin (SGLang, TGI) and those only TGI loads; which backend
# loads which each serving variant says (its `quantizations`, framework/recipe/serving.py).
Quantization = Literal[
    "none", "awq", "gptq", "fp8", "bitsandbytes", "gguf",
    "bitsandbytes-nf4", "bitsandbytes-fp4", "eetq", "exl2", "marlin",
]
QUANTIZATIONS: tuple[str, ...] = get_args(Quantization)
Dtype = Literal["auto", "float16", "bfloat16", "float32"]
DTYPES: tuple[str, ...] = get_args(Dtype)


class Boosting(Section):
    """LightGBM's settings (`architecture: lightgbm`); the names are LightGBM's own."""

    num_boost_round: Annotated[int, Field(ge=1, le=100000)] = Field(
        default=1000, description="Most trees (boosting rounds); training.early_stopping may stop sooner."
    )
    learning_rate: Annotated[float, Field(gt=0.0, le=1.0)] = Field(default=0.05, description="Shrinkage of each tree.")
    num_leaves: Annotated[int, Field(ge=2, le=131072)] = Field(default=31, description="Most leaves per tree.")
    max_depth: Annotated[int, Field(ge=-1, le=1000)] = Field(default=-1, description="Deepest tree; -1: no limit.")
    min_child_samples: Annotated[int, Field(ge=1)] = Field(default=20, description="Fewest rows in a leaf.")
    feature_fraction: Annotated[float, Field(gt=0.0, le=1.0)] = Field(
        default=1.0, description="Share of features each tree considers."
    )
    bagging_fraction: Annotated[float, Field(gt=0.0, le=1.0)] = Field(
        default=1.0, description="Share of rows each tree is grown on (every round when below 1)."
    )
    lambda_l2: Annotated[float, Field(ge=0.0)] = Field(default=0.0, description="L2 penalty on leaf values.")


class TabularModel(Section):
    kind: Literal["tabular"] = Field(description="A model over tabular features.")
    architecture: Literal["mlp", "linear", "lightgbm"] = Field(
        default="mlp",
        description="mlp or linear: a torch network (Ray Train's TorchTrainer); lightgbm: gradient-boosted trees "
        "(Ray Train's LightGBMTrainer), settings in `boosting`.",
    )
    boosting: Boosting | None = Field(
        default=None, description="LightGBM's settings, for architecture lightgbm (defaults when absent)."
    )

    @property
    def trees(self) -> Boosting:
        """LightGBM's settings as training uses them: `boosting`, or its defaults."""
        return self.boosting or Boosting()
    task: Literal["classification", "regression"] = Field(
        default="classification", description="What the model predicts."
    )
    num_classes: Annotated[int, Field(ge=2, le=10000)] = Field(
        default=2, description="Number of target classes (classification)."
    )
    hidden_sizes: list[PositiveInt] = Field(
        default_factory=lambda: [64, 32], max_length=16, description="Width of each hidden layer, input to output."
    )
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = Field(default=0.1, description="Dropout after each hidden layer.")
    activation: Literal["relu", "gelu", "tanh", "silu"] = Field(default="relu", description="Hidden activation.")
    batch_norm: bool = Field(default=False, description="Batch normalisation after each hidden layer.")


class LlmModel(Section):
    kind: Literal["llm"] = Field(description="A large language model served for generation.")
    source: str = Field(min_length=1, description="Hugging Face hub id or a local/remote path of the weights.")
    revision: str | None = Field(default=None, description="Hub revision (commit or tag) to pin.")
    quantization: Quantization = Field(default="none", description="Weight quantization of `source`.")
    dtype: Dtype = Field(default="auto", description="Compute dtype.")
    max_model_len: PositiveInt = Field(default=4096, description="Longest context (prompt + output) in tokens.")
    trust_remote_code: bool = Field(default=False, description="Allow code shipped with the weights to run.")
    token: SecretRef | None = Field(default=None, description="Secret holding the hub token for gated weights.")
    cpu_fallback: str | None = Field(
        default=None,
        description="Small model (path or hub id) served with transformers when no GPU is present; none disables it.",
    )


Model = Annotated[Union[TabularModel, LlmModel], Field(discriminator="kind")]
