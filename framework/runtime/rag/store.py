"""The persistent Chroma collection of a recipe's chunks (`rag.vector_store`).

One collection per recipe at `rag.vector_store.path` (relative to the project root),
named `rag.vector_store.collection` or the recipe name, in cosine space. Embeddings are
always computed here and passed in: Chroma's own embedding function (which downloads a
model) is never used, and its telemetry is off.

Chunk metadata: `source`, `index`, `document_sha256`, `title`, `section`, `start`.
Collection metadata: `mlops_fingerprint` (a hash of the chunking settings, the
embedding model and the text format that is embedded: when it changes, every chunk is
re-embedded) and `mlops_embedding_model` (the retriever refuses to query vectors made by
another model).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from framework.errors import MlopsError, Problem

# Bump when what is embedded for a chunk changes (Chunk.embedding_text), or the chunker's behaviour.
INDEX_FORMAT = 1
FINGERPRINT_KEY = "mlops_fingerprint"
MODEL_KEY = "mlops_embedding_model"


def store_path(rag, root: Path) -> Path:
    path = Path(rag.vector_store.path).expanduser()
    return path if path.is_absolute() else Path(root).resolve() / path


def collection_name(recipe_or_rag, rag=None) -> str:
    """`rag.vector_store.collection`, else the recipe name (Chroma wants >= 3 characters)."""
    rag = rag or getattr(recipe_or_rag, "rag", recipe_or_rag)
    name = rag.vector_store.collection or getattr(recipe_or_rag, "name", None) or "rag"
    return name if len(name) >= 3 else f"{name}-rag"


def fingerprint(rag, model_id: str) -> str:
    settings = {
        "format": INDEX_FORMAT,
        "chunking": {
            "size": rag.chunking.size,
            "overlap": rag.chunking.overlap,
            "separators": list(rag.chunking.separators),
        },
        "embedding": model_id,
    }
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:32]


def client(path: Path):
    """A Chroma client on a persistent folder, telemetry off."""
    import chromadb
    from chromadb.config import Settings

    Path(path).mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=Settings(anonymized_telemetry=False, allow_reset=False))


def create_collection(chroma, name: str, metadata: dict):
    return chroma.create_collection(
        name=name,
        configuration={"hnsw": {"space": "cosine"}},
        metadata=metadata,
        embedding_function=None,
    )


def get_collection(chroma, name: str):
    """The collection, or None when it does not exist."""
    from chromadb.errors import NotFoundError

    try:
        return chroma.get_collection(name=name, embedding_function=None)
    except (NotFoundError, ValueError):
        return None


def missing_index(rag, root: Path, name: str) -> MlopsError:
    return MlopsError(
        [
            Problem(
                None,
                "rag.vector_store.path",
                f"no collection '{name}' in {store_path(rag, root)}: index the documents first "
                "(`mlops apply` or `mlops eval` of the recipe, or python -m framework.runtime.rag.index)",
            )
        ]
    )


def add_chunks(collection, chunks, vectors, batch: int = 1000) -> None:
    """Upsert chunks with their vectors, in batches Chroma accepts."""
    for start in range(0, len(chunks), batch):
        part = chunks[start : start + batch]
        collection.upsert(
            ids=[c.id for c in part],
            embeddings=vectors[start : start + batch],
            documents=[c.text for c in part],
            metadatas=[chunk_metadata(c) for c in part],
        )


def chunk_metadata(chunk) -> dict:
    meta = {
        "source": chunk.source,
        "index": chunk.index,
        "document_sha256": chunk.document_sha256,
        "start": chunk.start,
    }
    if chunk.title:
        meta["title"] = chunk.title
    if chunk.section:
        meta["section"] = chunk.section
    return meta


def delete_ids(collection, ids: list[str], batch: int = 1000) -> None:
    for start in range(0, len(ids), batch):
        collection.delete(ids=ids[start : start + batch])
