"""`data`: where the training data comes from, what it must look like, how it splits."""


from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from framework.recipe.base import Section
from framework.recipe.feast import FeastSource
from framework.recipe.types import Fraction, PositiveInt

Column = Annotated[str, Field(min_length=1, max_length=128)]


class Source(Section):
    uri: str = Field(
        min_length=1,
        description="Path (relative to the project root) or URI (file://, s3://, gs://) of the data.",
    )
    format: Literal["csv", "parquet"] = Field(default="csv", description="File format of `uri`.")
    feast: FeastSource | None = Field(
        default=None,
        description="Join the features of a Feast feature view onto these entity/label rows (point in time).",
    )


class Split(Section):
    validation: Annotated[float, Field(gt=0.0, lt=1.0)] = Field(
        default=0.2, description="Fraction of rows held out for validation."
    )
    seed: int = Field(default=42, description="Seed of the shuffle, so every run splits the same.")
    stratify: bool = Field(default=True, description="Keep class proportions in both splits.")


class ColumnExpectation(Section):
    not_null: bool = Field(default=False, description="No value of the column may be null.")
    min: float | None = Field(default=None, description="Smallest allowed value.")
    max: float | None = Field(default=None, description="Largest allowed value.")
    in_set: list[str | int | float | bool] | None = Field(
        default=None, min_length=1, description="The only values allowed."
    )
    unique: bool = Field(default=False, description="Values must not repeat.")

    @field_validator("in_set")
    @classmethod
    def _categories_once(cls, values: list | None) -> list | None:
        repeated = sorted({str(v) for v in values or [] if values.count(v) > 1})
        if repeated:
            raise PydanticCustomError("in_set", f"lists {', '.join(repeated)} more than once")
        return values
    max_null_fraction: Fraction | None = Field(default=None, description="Largest allowed share of nulls.")


class TableExpectation(Section):
    min_rows: PositiveInt | None = Field(default=None, description="Fewest rows the data may have.")
    max_duplicate_fraction: Fraction | None = Field(
        default=None, description="Largest allowed share of fully duplicated rows."
    )
    min_class_fraction: Fraction | None = Field(
        default=None, description="Smallest allowed share of any target class."
    )


class Expectations(Section):
    columns: dict[Column, ColumnExpectation] = Field(
        default_factory=dict, description="Checks per column, by column name."
    )
    table: TableExpectation = Field(default_factory=TableExpectation, description="Checks of the whole table.")


class DataVersion(Section):
    rev: str = Field(description="DVC revision (commit, tag or branch) of the data.")
    remote: str | None = Field(default=None, description="DVC remote the data is pulled from.")


class Data(Section):
    source: Source = Field(description="Where the data is read from.")
    target: Column = Field(description="Column the model predicts.")
    features: list[Column] = Field(min_length=1, description="Columns fed to the model, in order.")
    categorical: list[Column] = Field(
        default_factory=list, description="Features that are categories (one-hot encoded), a subset of `features`."
    )
    extra_columns: list[Column] = Field(
        default_factory=list,
        description="Columns kept for evaluation only (ids, fairness attributes); never model inputs.",
    )
    missing: Literal["impute", "error"] = Field(
        default="impute",
        description="Nulls in a feature column: impute (numeric: the training split's median; categorical: no "
        "category, the all-zero one-hot) or error (refuse the data before training).",
    )
    split: Split = Field(default_factory=Split, description="Train/validation split.")
    expectations: Expectations = Field(
        default_factory=Expectations, description="Checks the data must pass before training."
    )
    version: DataVersion | None = Field(default=None, description="Optional DVC version of the data.")

    def columns(self) -> list[str]:
        return [*self.features, self.target, *self.extra_columns]
