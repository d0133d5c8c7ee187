"""The machinery every cross-field rule shares: `Violation`, what a rule yields (the keys
involved, the first locating it, a message naming them all, and its severity: an error
makes the recipe invalid, a warning, such as a deprecated value, leaves it valid and is
returned with the validated recipe); `Check`, the type of a rule; the `check`
decorator, which registers a rule in `CHECKS`; and `run_checks`, which runs the
registered rules in the order of `CHECKS` (fixed by the package's `RUN_ORDER`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from framework.recipe.recipe import Recipe


ERROR, WARNING = "error", "warning"


@dataclass(frozen=True)
class Violation:
    keys: tuple[str, ...]
    message: str
    severity: str = ERROR  # WARNING: reported, the recipe stays valid (`--strict` refuses it)


Check = Callable[[Recipe], Iterator[Violation]]
CHECKS: list[Check] = []


def check(rule: Check) -> Check:
    CHECKS.append(rule)
    return rule


def run_checks(recipe: Recipe) -> list[Violation]:
    return [violation for rule in CHECKS for violation in rule(recipe)]
