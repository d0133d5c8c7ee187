"""Tests of the RAG pipeline (framework.runtime.rag), with small helpers they share:
tiny recipes over corpora written to tmp dirs, and a guard that fails any network use."""

from __future__ import annotations

import functools
import socket
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


@functools.lru_cache(maxsize=1)
def support_recipe():
    """The validated support_assistant recipe of this repository."""
    from framework import api

    return api.load_recipe("support_assistant", project=REPO).recipe


def tiny_recipe(vectors: Path, documents: list[str], *, chunking: dict | None = None, retriever: dict | None = None,
                embedding: dict | None = None, questions: str | None = None, gates: dict | None = None, name: str | None = None):
    """support_assistant with another rag section (validated by the Rag model)."""
    from framework.recipe.evaluation import Evaluation
    from framework.recipe.rag import Rag

    base = support_recipe()
    rag = Rag.model_validate(
        {
            "documents": documents,
            "chunking": chunking or {"size": 300, "overlap": 40},
            "embedding": embedding or {"model": "all-MiniLM-L6-v2", "batch_size": 16},
            "vector_store": {"path": str(vectors)},
            "retriever": retriever or {"search": "similarity", "k": 3, "fetch_k": 10},
        }
    )
    update = {"rag": rag}
    if name:
        update["name"] = name
    if questions is not None or gates is not None:
        update["evaluation"] = Evaluation.model_validate(
            {
                "metrics": ["recall_at_k", "mrr"],
                "gates": {"onnx_parity_atol": None, **(gates or {"min_recall_at_k": 0.8, "min_mrr": 0.5})},
                "retrieval": {"questions": questions or "questions.jsonl", "k": 3},
            }
        )
    return base.model_copy(update=update)


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def block_network(monkeypatch) -> None:
    """Any attempt to open a network connection fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args[1:] if len(args) > 1 else args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
