"""The embedder: the shipped all-MiniLM-L6-v2, extracted once, loaded offline."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from framework.errors import MlopsError
from framework.runtime.rag import embedding
from framework.runtime.rag.embedding import SHIPPED_MODEL, Embedder, extract_shipped, resolve_model
from tests.rag import block_network


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("state")


def test_the_shipped_model_is_extracted_once_atomically(cache_dir: Path) -> None:
    target = extract_shipped(cache_dir)
    assert target == cache_dir / "models" / SHIPPED_MODEL
    for name in ("modules.json", "model.safetensors", "tokenizer.json", "1_Pooling/config.json"):
        assert (target / name).is_file(), name
    stamp = (target / "model.safetensors").stat().st_mtime_ns
    assert extract_shipped(cache_dir) == target
    assert (target / "model.safetensors").stat().st_mtime_ns == stamp  # not extracted again
    assert [p.name for p in target.parent.iterdir()] == [SHIPPED_MODEL]  # no staging folder left behind


def test_both_names_resolve_to_the_packaged_model_and_others_are_refused(cache_dir: Path, tmp_path: Path) -> None:
    packaged = resolve_model("all-MiniLM-L6-v2", cache_dir)
    assert resolve_model("sentence-transformers/all-MiniLM-L6-v2", cache_dir) == packaged
    assert resolve_model(str(packaged), cache_dir) == packaged.resolve()  # a local model folder
    with pytest.raises(MlopsError) as error:
        resolve_model("BAAI/bge-small-en-v1.5", cache_dir)
    message = str(error.value)
    assert message.startswith("rag.embedding.model: unknown embedding model 'BAAI/bge-small-en-v1.5'")
    assert "all-MiniLM-L6-v2" in message and "nothing is downloaded" in message
    (tmp_path / "empty").mkdir()
    with pytest.raises(MlopsError, match="unknown embedding model"):
        resolve_model(str(tmp_path / "empty"), cache_dir)


def test_embeddings_offline_normalised_and_meaningful(cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    block_network(monkeypatch)  # loading and encoding must never touch the network
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(embedding, "_MODELS", {})  # load it here, whichever test loaded it before
    embedder = Embedder("all-MiniLM-L6-v2", cache_dir, batch_size=8)
    vectors = embedder.embed(
        [
            "How do I roll back a bad model version?",
            "Revert the deployment to the previous model release.",
            "The soup needs more salt and pepper.",
        ]
    )
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["TRANSFORMERS_OFFLINE"] == "1"
    import huggingface_hub.constants

    assert huggingface_hub.constants.HF_HUB_OFFLINE is True
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similar, unrelated = vectors[0] @ vectors[1], vectors[0] @ vectors[2]
    assert similar > unrelated + 0.2, (similar, unrelated)
    assert embedder.embed([]).shape == (0, 384)
    assert embedder.dimension == 384


def test_a_process_loads_each_model_once(cache_dir: Path) -> None:
    first = Embedder("all-MiniLM-L6-v2", cache_dir).model
    second = Embedder("sentence-transformers/all-MiniLM-L6-v2", cache_dir, batch_size=4).model
    assert first is second
    assert str((cache_dir / "models" / SHIPPED_MODEL).resolve()) in embedding._MODELS
