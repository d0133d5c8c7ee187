"""The request tensor of a categorical column: each value's category_key ("" for a null),
the same whether computed per distinct value (one type family) or per value (mixed)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from framework.runtime.training.features import category_keys


@pytest.mark.parametrize(
    ("values", "keys"),
    [
        (pd.Series(["a", None, "b", np.nan, "a"]), ["a", "", "b", "", "a"]),
        (pd.Series([1, 2, 1]), ["1", "2", "1"]),
        (pd.Series([1.0, np.nan, 2.5, 3.0]), ["1", "", "2.5", "3"]),
        (pd.Series([True, False, None], dtype=object), ["true", "false", ""]),
        (pd.Series([True, 1, "x", None, 1.0], dtype=object), ["true", "1", "x", "", "1"]),  # True == 1, keys differ
        (pd.Series([], dtype=object), []),
        (pd.Series([None, None]), ["", ""]),
        (pd.Series(pd.array([1, None, 3], dtype="Int64")), ["1", "", "3"]),
        (pd.Series(["a", "b", None], dtype="category"), ["a", "b", ""]),
        (pd.Series(pd.array(["a", None], dtype="string")), ["a", ""]),
    ],
)
def test_keys_of_every_kind_of_column(values: pd.Series, keys: list[str]) -> None:
    got = category_keys(values)
    assert got.dtype == object and got.tolist() == keys
