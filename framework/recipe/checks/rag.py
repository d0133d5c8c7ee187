"""Rules mainly about `rag`: that a rag section goes with an LLM, and how its chunking,
retriever and prompt fit together.
"""

from __future__ import annotations

from collections.abc import Iterator

from framework.recipe.checks.base import Violation, check
from framework.recipe.recipe import Recipe


@check
def rag_needs_llm(r: Recipe) -> Iterator[Violation]:
    if r.rag is not None and r.model.kind != "llm":
        yield Violation(("rag", "model.kind"), "a rag section needs model.kind llm")


@check
def chunks_overlap_less_than_size(r: Recipe) -> Iterator[Violation]:
    if r.rag is not None and r.rag.chunking.overlap >= r.rag.chunking.size:
        yield Violation(
            ("rag.chunking.overlap", "rag.chunking.size"),
            f"rag.chunking.overlap ({r.rag.chunking.overlap}) must be < rag.chunking.size ({r.rag.chunking.size})",
        )


@check
def mmr_fetches_enough(r: Recipe) -> Iterator[Violation]:
    if r.rag is not None and r.rag.retriever.fetch_k < r.rag.retriever.k:
        yield Violation(
            ("rag.retriever.fetch_k", "rag.retriever.k"),
            f"rag.retriever.fetch_k ({r.rag.retriever.fetch_k}) must be >= rag.retriever.k ({r.rag.retriever.k})",
        )


@check
def prompt_has_placeholders(r: Recipe) -> Iterator[Violation]:
    if r.rag is None:
        return
    missing = [p for p in ("{context}", "{question}") if p not in r.rag.prompt]
    if missing:
        yield Violation(("rag.prompt",), f"rag.prompt must contain {' and '.join(missing)}")
