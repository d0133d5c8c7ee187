"""Retrieval: similarity vs maximal marginal relevance, hits, errors, threads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from framework.errors import MlopsError
from framework.runtime.rag.index import index_corpus
from framework.runtime.rag.retrieve import Retriever, mmr
from tests.rag import tiny_recipe, write

BACKUPS = "# Backups\n\nNightly backups of the customer database are copied to object storage and kept for thirty days.\n"
CORPUS = {
    "docs/backups.md": BACKUPS,
    "docs/backups-copy.md": BACKUPS,  # a duplicate page, as happens when docs are copied around
    "docs/restore.md": "# Restore\n\nTo restore the customer database, download last night's snapshot and run the restore script.\n",
    "docs/cooking.md": "# Soup\n\nSimmer the onions slowly, then add the stock and a pinch of salt.\n",
    "docs/travel.md": "# Trains\n\nThe night train to Vienna leaves at nine and arrives early in the morning.\n",
}
QUESTION = "How long are database backups kept?"


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("corpus")
    state = tmp_path_factory.mktemp("state")
    write(root, CORPUS)
    index_corpus(tiny_recipe(root / "vectors", ["docs/*.md"]), root, state)
    return root, state


def retriever(indexed, **settings) -> Retriever:
    root, state = indexed
    return Retriever(tiny_recipe(root / "vectors", ["docs/*.md"], retriever=settings), root, state)


def test_mmr_picks_the_most_relevant_first_then_avoids_near_duplicates() -> None:
    query = np.array([1.0, 0.0, 0.0], dtype=np.float32)
    a = np.array([0.9, 0.436, 0.0])
    candidates = np.stack([a, a * 0.9999 + 0.0001, np.array([0.8, 0.0, 0.6]), np.array([0.0, 0.0, 1.0])])
    candidates = (candidates / np.linalg.norm(candidates, axis=1, keepdims=True)).astype(np.float32)
    assert mmr(query, candidates, 4, 1.0) == [0, 1, 2, 3]  # relevance only: similarity order
    assert mmr(query, candidates, 2, 0.5) == [0, 2]  # the duplicate (1) gives way to the next relevant one
    assert mmr(query, candidates, 3, 0.0)[0] == 0 and mmr(query, candidates, 3, 0.0)[1] == 3  # diversity only
    assert sorted(mmr(query, candidates, 10, 0.5)) == [0, 1, 2, 3]  # never more than the candidates
    assert mmr(query, candidates[:0], 3, 0.5) == []


def test_similarity_returns_both_duplicates_mmr_only_one(indexed) -> None:
    similar = retriever(indexed, search="similarity", k=2, fetch_k=10).search(QUESTION)
    assert {h.source for h in similar} == {"docs/backups.md", "docs/backups-copy.md"}
    assert similar[0].text == similar[1].text and similar[0].score == pytest.approx(similar[1].score, abs=1e-4)

    diverse = retriever(indexed, search="mmr", k=2, fetch_k=5, lambda_mult=0.5).search(QUESTION)
    assert diverse[0].source in {"docs/backups.md", "docs/backups-copy.md"}
    assert diverse[0].score == pytest.approx(similar[0].score, abs=1e-4)
    assert diverse[1].text != diverse[0].text  # the duplicate page is not spent on the context

    relevance_only = retriever(indexed, search="mmr", k=3, fetch_k=5, lambda_mult=1.0).search(QUESTION)
    plain = retriever(indexed, search="similarity", k=3, fetch_k=5).search(QUESTION)
    assert [h.text for h in relevance_only] == [h.text for h in plain]


def test_hits_carry_source_title_score_and_id(indexed) -> None:
    hits = retriever(indexed, search="similarity", k=5, fetch_k=5).search("What do I need for a good soup?")
    top = hits[0]
    assert (top.source, top.chunk_id, top.title, top.section) == ("docs/cooking.md", "docs/cooking.md#0", "Soup", "Soup")
    assert "onions" in top.text
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True) and -1.0 <= scores[-1] < scores[0] <= 1.0
    assert len(retriever(indexed, search="similarity", k=2, fetch_k=5).search(QUESTION, top_k=4)) == 4
    assert len(retriever(indexed, search="mmr", k=2, fetch_k=3).search(QUESTION, top_k=4)) == 4  # fetch_k < top_k


def test_a_retriever_is_shared_by_threads(indexed) -> None:
    shared = retriever(indexed, search="mmr", k=3, fetch_k=5)
    questions = [QUESTION, "restore from a snapshot", "night train", "onion soup"] * 3
    expected = [[h.chunk_id for h in shared.search(q)] for q in questions]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda q: [h.chunk_id for h in shared.search(q)], questions))
    assert got == expected


def test_no_index_or_another_embedding_model_is_a_clear_error(indexed, tmp_path: Path) -> None:
    root, state = indexed
    with pytest.raises(MlopsError, match="rag.vector_store.path: no collection 'support-assistant' in .*: index the documents first"):
        Retriever(tiny_recipe(tmp_path / "nothing", ["docs/*.md"]), root, state)
    assert not (tmp_path / "nothing").exists()  # no empty store left behind
    local_model = str(state / "models" / "all-MiniLM-L6-v2")  # the same weights, named by path
    other = tiny_recipe(root / "vectors", ["docs/*.md"], embedding={"model": local_model})
    with pytest.raises(MlopsError, match="rag.embedding.model: the collection 'support-assistant' was embedded with 'all-MiniLM-L6-v2'"):
        Retriever(other, root, state)
