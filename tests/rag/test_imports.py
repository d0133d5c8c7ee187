"""The RAG modules import no heavy library at module level (chromadb, torch, ...)."""

from __future__ import annotations

import subprocess
import sys

from tests.rag import REPO

MODULES = ("documents", "chunking", "embedding", "store", "index", "retrieve", "evaluate")
HEAVY = ("chromadb", "torch", "sentence_transformers", "transformers", "langchain_text_splitters", "pypdf", "all_minilm_l6_v2")


def test_importing_the_pipeline_is_light() -> None:
    code = (
        "import sys\n"
        + "".join(f"import framework.runtime.rag.{m}\n" for m in MODULES)
        + f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""
