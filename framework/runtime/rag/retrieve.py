"""Retrieve the chunks that answer a question: similarity search or MMR.

`similarity`: the `k` nearest chunks by cosine similarity. `mmr` (maximal marginal
relevance): the `fetch_k` nearest are fetched with their embeddings and re-ranked
greedily, each next pick maximising
`lambda_mult * sim(question, c) - (1 - lambda_mult) * max(sim(c, picked))`, so near
duplicates (overlapping chunks, a README paragraph repeated in a page) give way to
other relevant chunks. A hit's `score` is always its cosine similarity to the question.

One Chroma client per Retriever; queries and embeddings are serialised by locks, so a
Retriever can be shared by a server's threads.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from framework.errors import MlopsError, Problem
from framework.runtime.rag import store
from framework.runtime.rag.documents import rag_section


@dataclass(frozen=True)
class Hit:
    source: str
    text: str
    score: float  # cosine similarity to the question
    chunk_id: str
    title: str | None = None
    section: str | None = None


def mmr(query: np.ndarray, candidates: np.ndarray, k: int, lambda_mult: float) -> list[int]:
    """Indices of `candidates` (L2-normalised rows) in MMR order, at most k."""
    n = len(candidates)
    if n == 0 or k <= 0:
        return []
    relevance = candidates @ query
    similarity = candidates @ candidates.T
    picked = [int(np.argmax(relevance))]
    redundancy = similarity[picked[0]].copy()  # max similarity to anything picked
    available = np.ones(n, dtype=bool)
    available[picked[0]] = False
    while len(picked) < min(k, n):
        scores = lambda_mult * relevance - (1.0 - lambda_mult) * redundancy
        scores[~available] = -np.inf
        best = int(np.argmax(scores))
        picked.append(best)
        available[best] = False
        redundancy = np.maximum(redundancy, similarity[best])
    return picked


class Retriever:
    """Search a recipe's indexed collection (built by index.index_corpus)."""

    def __init__(self, recipe, root: Path, state_dir: Path | None = None, embedder=None):
        from framework.runtime.rag.embedding import embedder_for
        from framework.runtime.rag.index import default_state_dir

        self.root = Path(root).resolve()
        self.rag = rag_section(recipe)
        self.settings = self.rag.retriever
        state_dir = Path(state_dir) if state_dir is not None else default_state_dir(self.root)
        self.embedder = embedder or embedder_for(self.rag, state_dir, self.root)
        self.name = store.collection_name(recipe, self.rag)
        path = store.store_path(self.rag, self.root)
        if not path.is_dir():  # don't leave an empty store behind
            raise store.missing_index(self.rag, self.root, self.name)
        self._client = store.client(path)
        self._collection = store.get_collection(self._client, self.name)
        if self._collection is None:
            raise store.missing_index(self.rag, self.root, self.name)
        built_with = (self._collection.metadata or {}).get(store.MODEL_KEY)
        if built_with != self.embedder.model_id:
            raise MlopsError(
                [
                    Problem(
                        None,
                        "rag.embedding.model",
                        f"the collection '{self.name}' was embedded with {built_with!r}, the recipe says "
                        f"{self.embedder.model_id!r}: index the documents again",
                    )
                ]
            )
        self._lock = threading.Lock()

    def count(self) -> int:
        with self._lock:
            return self._collection.count()

    def search(self, question: str, top_k: int | None = None) -> list[Hit]:
        """The top_k (default `rag.retriever.k`) chunks for a question, best first."""
        k = int(top_k or self.settings.k)
        query = self.embedder.embed_one(question)
        use_mmr = self.settings.search == "mmr"
        fetch = max(self.settings.fetch_k, k) if use_mmr else k
        include = ["documents", "metadatas", "distances"] + (["embeddings"] if use_mmr else [])
        with self._lock:
            total = self._collection.count()
            if total == 0:
                return []
            result = self._collection.query(
                query_embeddings=query[None, :], n_results=min(fetch, total), include=include
            )
        ids = result["ids"][0]
        texts = result["documents"][0]
        metas = result["metadatas"][0]
        scores = [1.0 - float(d) for d in result["distances"][0]]
        order = list(range(min(k, len(ids))))
        if use_mmr and ids:
            vectors = np.asarray(result["embeddings"][0], dtype=np.float32)
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
            order = mmr(query, vectors, k, self.settings.lambda_mult)
        hits = []
        for i in order:
            meta = metas[i] or {}
            hits.append(
                Hit(
                    source=str(meta.get("source", "")),
                    text=texts[i],
                    score=scores[i],
                    chunk_id=ids[i],
                    title=meta.get("title"),
                    section=meta.get("section"),
                )
            )
        return hits
