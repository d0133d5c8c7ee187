"""Index a recipe's corpus into its Chroma collection, re-embedding only what changed.

Each chunk's metadata carries the sha256 of its document. A run loads the documents,
reads the collection's (id, source, document_sha256) triples and then, per document:
unchanged (every stored chunk has its current sha256): nothing to do; new or changed:
chunk, embed, upsert, then delete its stale ids (a crash in between leaves mixed hashes,
which the next run sees as changed); gone from the corpus: its chunks are deleted.
When the collection's fingerprint (chunking settings, embedding model, index format)
differs from the recipe's, the collection is dropped and everything is re-embedded.
The embedding model is only loaded when something has to be embedded, so an
up-to-date index costs a hash of each document and one metadata read.

`python -m framework.runtime.rag.index RESOLVED [--root DIR] [--state-dir DIR]` runs it
on a resolved recipe (what the generated RAG index RayJob runs): progress on stderr, the
report as one JSON line on stdout; an error is one line on stderr and exit 1.
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

from framework.runtime.rag import store
from framework.runtime.rag.chunking import chunk, document_title, splitter
from framework.runtime.rag.documents import load_documents, rag_section


@dataclass(frozen=True)
class IndexReport:
    documents: int  # in the corpus now
    chunks: int  # in the collection after the run
    embedded: int  # chunks embedded by this run
    unchanged: int  # documents left as they were
    removed: int  # documents no longer in the corpus, their chunks deleted
    seconds: float
    changed: int = 0  # documents (re-)embedded: new, edited, or all after a rebuild
    rebuilt: bool = False  # fingerprint changed (or new collection): everything embedded
    collection: str = ""
    path: str = ""

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        rebuilt = ", new collection (first run, or chunking/embedding settings changed)" if self.rebuilt else ""
        return (
            f"indexed {self.documents} documents into {self.chunks} chunks in {self.seconds:.1f} s: "
            f"{self.embedded} chunks embedded ({self.changed} documents new or changed), "
            f"{self.unchanged} unchanged, {self.removed} removed{rebuilt}"
        )


def default_state_dir(root: Path) -> Path:
    from framework.project import Project

    return Project.discover(Path(root)).state_dir


def _index_lock(state_dir: Path, name: str):
    """One indexer per collection at a time (a second one waits for the first)."""
    from framework.runtime.locks import LOCKS_DIR, blocking_lock

    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", name)
    return blocking_lock(Path(state_dir).resolve() / LOCKS_DIR / f"rag-{safe}.lock")


def index_corpus(recipe, root: Path, state_dir: Path | None = None, console=None) -> IndexReport:
    """Bring the recipe's collection up to date with `rag.documents`."""
    from framework.runtime.rag.embedding import embedder_for

    started = time.perf_counter()
    root = Path(root).resolve()
    rag = rag_section(recipe)
    state_dir = Path(state_dir) if state_dir is not None else default_state_dir(root)
    name = store.collection_name(recipe, rag)
    path = store.store_path(rag, root)
    documents = load_documents(rag, root)
    embedder = embedder_for(rag, state_dir, root)  # resolves (and extracts) the model; loads it lazily
    wanted = store.fingerprint(rag, embedder.model_id)

    with _index_lock(state_dir, name):
        chroma = store.client(path)
        collection = store.get_collection(chroma, name)
        rebuilt = False
        if collection is not None and (collection.metadata or {}).get(store.FINGERPRINT_KEY) != wanted:
            chroma.delete_collection(name)
            collection = None
        if collection is None:
            rebuilt = True
            collection = store.create_collection(
                chroma, name, {store.FINGERPRINT_KEY: wanted, store.MODEL_KEY: embedder.model_id}
            )

        stored = collection.get(include=["metadatas"])
        ids_of: dict[str, list[str]] = defaultdict(list)
        hashes_of: dict[str, set[str]] = defaultdict(set)
        for chunk_id, meta in zip(stored["ids"], stored["metadatas"] or []):
            meta = meta or {}
            source = str(meta.get("source", ""))
            ids_of[source].append(chunk_id)
            hashes_of[source].add(str(meta.get("document_sha256", "")))

        current = {doc.source for doc in documents}
        removed = sorted(source for source in ids_of if source not in current)
        for source in removed:
            store.delete_ids(collection, ids_of[source])

        todo = [doc for doc in documents if hashes_of.get(doc.source) != {doc.sha256}]
        unchanged = len(documents) - len(todo)
        split = splitter(rag.chunking)
        chunks, texts = [], []
        for doc in todo:
            title = document_title(doc)
            for piece in chunk(doc, rag.chunking, split):
                chunks.append(piece)
                texts.append(piece.embedding_text(title))
        if chunks and console is not None:
            console.print(f"embedding {len(chunks)} chunks of {len(todo)} documents with {embedder.model_id}")
        if chunks:
            store.add_chunks(collection, chunks, embedder.embed(texts))
        fresh = {c.id for c in chunks}
        stale = [cid for doc in todo for cid in ids_of.get(doc.source, []) if cid not in fresh]
        store.delete_ids(collection, stale)
        total = collection.count()

    report = IndexReport(
        documents=len(documents),
        chunks=total,
        embedded=len(chunks),
        unchanged=unchanged,
        removed=len(removed),
        seconds=time.perf_counter() - started,
        changed=len(todo),
        rebuilt=rebuilt,
        collection=name,
        path=str(path),
    )
    if console is not None:
        console.print(report.summary())
    return report


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json
    import os

    parser = argparse.ArgumentParser(prog="python -m framework.runtime.rag.index", description=__doc__.splitlines()[0])
    parser.add_argument("resolved", type=Path, help="recipe.resolved.yaml written by `mlops generate`")
    parser.add_argument("--root", type=Path, default=None,
                        help="project root: rag.documents and rag.vector_store.path are relative to it "
                        "(default: the working directory)")
    parser.add_argument("--state-dir", type=Path, default=None,
                        help="where the embedding model is unpacked and the index lock kept "
                        "(default: $MLOPS_STATE_DIR, else the project's state_dir)")
    args = parser.parse_args(argv)
    from rich.console import Console

    from framework.errors import Location, MlopsError, Problem
    from framework.runtime.resolved import load_resolved, run_entrypoint

    root = args.root if args.root is not None else Path.cwd()
    state_dir = args.state_dir
    if state_dir is None and os.environ.get("MLOPS_STATE_DIR"):
        state_dir = Path(os.environ["MLOPS_STATE_DIR"])

    def body() -> int:
        recipe = load_resolved(args.resolved)[0]
        console = Console(stderr=True, highlight=False, markup=False, soft_wrap=True)
        try:
            report = index_corpus(recipe, root, state_dir, console=console)
        except OSError as exc:  # a read-only or missing volume, a full disk: the pod's setup, not a bug
            raise MlopsError([Problem(Location(str(args.resolved)), "rag.vector_store.path",
                                      f"indexing failed: {exc}")]) from None
        print(json.dumps(report.to_dict(), sort_keys=True))
        return 0

    return run_entrypoint(body)


if __name__ == "__main__":
    import sys

    sys.exit(main())
