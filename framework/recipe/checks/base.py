"""The machinery every cross-field rule shares: `Violation`, what a rule yields (the keys
involved, the first locating it, and a message naming them all); `Check`, the type of a
rule; the `check` decorator, which registers a rule in `CHECKS`; and `run_checks`, which
runs the registered rules in the order of `CHECKS` (fixed by the package's `RUN_ORDER`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from framework.recipe.recipe import Recipe


@dataclass(frozen=True)
class Violation:
    keys: tuple[str, ...]
    message: str


Check = Callable[[Recipe], Iterator[Violation]]
CHECKS: list[Check] = []


def check(rule: Check) -> Check:
    CHECKS.append(rule)
    return rule


def run_checks(recipe: Recipe) -> list[Violation]:
    return [violation for rule in CHECKS for violation in rule(recipe)]
