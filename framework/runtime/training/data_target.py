"""Can the target train the recipe's model? A classifier needs rows of each of its
`model.num_classes` classes (min_class_fraction passes trivially when one class is left);
a regression needs numbers; every row needs a target. One `data.target` row in the
report, failed or not.

Values outside the target's `in_set` are that expectation's failure, not counted here.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from framework.runtime.training.data_report import CheckResult
from framework.runtime.training.data_values import MAX_EXAMPLES, canonical, examples_text, is_in_set, number_text, rows_text, value_text


def target_results(recipe: Any, df: pd.DataFrame) -> list[CheckResult]:
    data, model = recipe.data, recipe.model
    task = getattr(model, "task", None)  # an llm recipe has no task, nothing to train
    if data.target not in df.columns or task is None:
        return []
    nulls = int(df[data.target].isna().sum())
    if nulls:  # a row without a target can neither train nor be scored
        observed = (f"'{data.target}' is null in {nulls} of {rows_text(len(df))}: drop those rows or fill the target "
                    "(data.missing fills features only)")
        return [CheckResult(data.target, "target", "a value in every row", observed, False)]
    if task == "regression":
        return [_numeric(data.target, df[data.target], len(df))]
    expectation = data.expectations.columns.get(data.target)
    in_set = expectation.in_set if expectation is not None and expectation.in_set else None
    return [_classes(data.target, df[data.target], len(df), model.num_classes, in_set)]


def _classes(target: str, series: pd.Series, rows: int, wanted: int, in_set: list | None) -> CheckResult:
    present = series.dropna()
    if in_set is not None:
        present = present[is_in_set(present, in_set).to_numpy(dtype=bool)]
    counts = present.value_counts()
    found = [c for c, _ in sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))]
    n = len(found)
    shown = ", ".join(value_text(c) for c in found[:MAX_EXAMPLES]) + (f" and {n - MAX_EXAMPLES} more" if n > MAX_EXAMPLES else "")
    has = f"'{target}' has {n} distinct {'class' if n == 1 else 'classes'}" + (f" ({shown})" if n else "")
    observed = f"{has} in {rows_text(rows)}"
    # in_set fixes the classes: fewer is the failure (more is the in_set check's); else any mismatch.
    passed = n == wanted or (in_set is not None and n > wanted)
    if not passed:
        observed += f" but model.num_classes is {wanted}"
        if n < wanted and in_set is not None:
            seen = {canonical(c) for c in found}
            observed += ": no rows of " + ", ".join(value_text(c) for c in in_set if canonical(c) not in seen)
        elif n < wanted:
            observed += ": a classifier learns only the classes it has rows of"
    return CheckResult(target, "target", f"{wanted} classes (model.num_classes)", observed, passed)


def _numeric(target: str, series: pd.Series, rows: int) -> CheckResult:
    present = series.dropna()
    numbers = pd.to_numeric(present, errors="coerce")
    text = present[numbers.isna()]
    expected = "numbers (model.task: regression)"
    if len(text):
        observed = (f"'{target}' is not numeric in {len(text)} of {rows_text(rows)}: {examples_text(text.value_counts())}; "
                    "model.task regression predicts numbers")
        return CheckResult(target, "target", expected, observed, False)
    if numbers.empty:
        return CheckResult(target, "target", expected, f"'{target}' has no values in {rows_text(rows)}", False)
    return CheckResult(target, "target", expected,
                       f"'{target}': {len(numbers)} numbers from {number_text(numbers.min())} to {number_text(numbers.max())}", True)


__all__ = ["target_results"]
