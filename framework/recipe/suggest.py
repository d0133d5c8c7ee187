"""Did-you-mean suggestions for misspelled keys, group options and recipe names."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def closest(word: str, candidates: Iterable[str]) -> str | None:
    match = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return match[0] if match else None


def did_you_mean(word: str, candidates: Iterable[str], prefix: str = "") -> str:
    """' (did you mean 'prefix.x'?)' for the closest candidate, or ''."""
    best = closest(word, candidates)
    if best is None:
        return ""
    return f" (did you mean '{prefix + '.' if prefix else ''}{best}'?)"


def one_of(candidates: Iterable[str]) -> str:
    return ", ".join(sorted(candidates)) or "(none)"
