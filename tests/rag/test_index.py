"""Incremental indexing: unchanged documents are never embedded again."""

from __future__ import annotations

from pathlib import Path

import pytest

from framework.runtime.rag import store
from framework.runtime.rag.embedding import Embedder
from framework.runtime.rag.index import index_corpus
from tests.rag import block_network, tiny_recipe, write

PAGES = {
    "docs/install.md": "# Install\n\n## Requirements\n\n" + "Python 3.11 and a C compiler are needed. " * 6
    + "\n\n## Steps\n\n" + "Run make to build the virtual environment. " * 6,
    "docs/serve.md": "# Serve\n\n## Start\n\n" + "The server listens on port 8000 by default. " * 6
    + "\n\n## Stop\n\n" + "Press Ctrl-C and the server exits cleanly. " * 6,
    "docs/faq.md": "# FAQ\n\n## Cost\n\n" + "The project is free and open source software. " * 6,
    "notes.txt": "Release notes: version 1 shipped in spring. " * 5,
}


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("state")


@pytest.fixture
def embedded(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The texts each embed() call received during the test."""
    texts: list[str] = []
    original = Embedder.embed

    def spy(self, batch):
        batch = list(batch)
        texts.extend(batch)
        return original(self, batch)

    monkeypatch.setattr(Embedder, "embed", spy)
    block_network(monkeypatch)
    return texts


def stored(recipe, root: Path) -> dict[str, dict]:
    chroma = store.client(store.store_path(recipe.rag, root))
    collection = store.get_collection(chroma, store.collection_name(recipe))
    got = collection.get(include=["metadatas", "documents"])
    return {cid: {**meta, "text": text} for cid, meta, text in zip(got["ids"], got["metadatas"], got["documents"])}


def test_second_run_embeds_nothing_and_an_edit_only_its_own_chunks(tmp_path: Path, state: Path, embedded: list[str]) -> None:
    write(tmp_path, PAGES)
    recipe = tiny_recipe(tmp_path / "vectors", ["docs/**/*.md", "notes.txt"])

    first = index_corpus(recipe, tmp_path, state)
    assert (first.documents, first.unchanged, first.removed, first.changed, first.rebuilt) == (4, 0, 0, 4, True)
    assert first.embedded == first.chunks == len(embedded) > 4
    before = stored(recipe, tmp_path)
    assert {m["source"] for m in before.values()} == set(PAGES)
    stop = [m for m in before.values() if m["text"].startswith("## Stop")]
    assert [(m["title"], m["section"]) for m in stop] == [("Stop", "Serve > Stop")]

    embedded.clear()
    second = index_corpus(recipe, tmp_path, state)
    assert (second.embedded, second.unchanged, second.changed, second.removed, second.rebuilt) == (0, 4, 0, 0, False)
    assert second.chunks == first.chunks and embedded == []
    assert stored(recipe, tmp_path) == before

    (tmp_path / "docs/serve.md").write_text(PAGES["docs/serve.md"] + "\n\n## Logs\n\nLogs go to stderr.\n", encoding="utf-8")
    third = index_corpus(recipe, tmp_path, state)
    after = stored(recipe, tmp_path)
    serve_ids = sorted(cid for cid, meta in after.items() if meta["source"] == "docs/serve.md")
    assert (third.changed, third.unchanged, third.removed) == (1, 3, 0)
    assert third.embedded == len(serve_ids) == len(embedded)
    assert all(text.startswith("Serve") for text in embedded)  # only serve.md's chunks (heading path first)
    assert any("Logs go to stderr." in after[cid]["text"] for cid in serve_ids)
    for cid, meta in before.items():  # everything else untouched
        if meta["source"] != "docs/serve.md":
            assert after[cid] == meta


def test_shrinking_and_removed_documents_leave_no_stale_chunks(tmp_path: Path, state: Path, embedded: list[str]) -> None:
    write(tmp_path, PAGES)
    recipe = tiny_recipe(tmp_path / "vectors", ["docs", "notes.txt"])
    first = index_corpus(recipe, tmp_path, state)
    (tmp_path / "docs/install.md").write_text("# Install\n\nJust run make.\n", encoding="utf-8")
    (tmp_path / "docs/faq.md").unlink()
    embedded.clear()
    report = index_corpus(recipe, tmp_path, state)
    assert (report.documents, report.changed, report.unchanged, report.removed, report.embedded) == (3, 1, 2, 1, 1)
    after = stored(recipe, tmp_path)
    assert [cid for cid in after if cid.startswith("docs/install.md")] == ["docs/install.md#0"]
    assert not any(meta["source"] == "docs/faq.md" for meta in after.values())
    assert report.chunks == len(after) < first.chunks


def test_changed_chunking_or_model_settings_rebuild_everything(tmp_path: Path, state: Path, embedded: list[str]) -> None:
    write(tmp_path, PAGES)
    recipe = tiny_recipe(tmp_path / "vectors", ["docs/**/*.md"])
    first = index_corpus(recipe, tmp_path, state)
    resized = tiny_recipe(tmp_path / "vectors", ["docs/**/*.md"], chunking={"size": 200, "overlap": 20})
    embedded.clear()
    report = index_corpus(resized, tmp_path, state)
    assert report.rebuilt and report.unchanged == 0 and report.changed == 3
    assert report.embedded == report.chunks == len(embedded) > first.chunks
    assert all(len(meta["text"]) <= 200 for meta in stored(resized, tmp_path).values())


def test_collection_name_and_store_path(tmp_path: Path) -> None:
    recipe = tiny_recipe(Path("rel/vectors"), ["a.md"])
    assert store.store_path(recipe.rag, tmp_path) == tmp_path.resolve() / "rel/vectors"
    assert store.collection_name(recipe) == "support-assistant"
    named = recipe.model_copy(update={"rag": recipe.rag.model_copy(update={"vector_store": recipe.rag.vector_store.model_copy(update={"collection": "docs-v2"})})})
    assert store.collection_name(named) == "docs-v2"
    short = recipe.model_copy(update={"name": "qa"})
    assert store.collection_name(short) == "qa-rag"  # Chroma wants at least 3 characters


def test_the_command_line_indexes_a_resolved_recipe(tmp_path: Path) -> None:
    """`python -m framework.runtime.rag.index RESOLVED [--root] [--state-dir]`, the
    entrypoint of the generated RAG index RayJob: the JSON report on stdout, progress on
    stderr; the root defaults to the working directory, the state dir to $MLOPS_STATE_DIR;
    errors are one line and exit 1."""
    import json
    import os
    import subprocess
    import sys

    from framework.targets.common import resolved_recipe_yaml
    from tests.rag import REPO

    project = tmp_path / "project"
    write(project, {"docs/install.md": PAGES["docs/install.md"]})
    recipe = tiny_recipe(Path("vectors"), ["docs/**/*.md"])
    resolved = tmp_path / "recipe.resolved.yaml"
    resolved.write_text(resolved_recipe_yaml(recipe), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "MLOPS_STATE_DIR"}

    def index(*args: str, cwd: Path = REPO, **extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "framework.runtime.rag.index", str(resolved), *args],
                              cwd=cwd, env={**env, **extra}, capture_output=True, text=True, timeout=300)

    first = index("--root", str(project), "--state-dir", str(tmp_path / "state"))
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert (report["documents"], report["changed"], report["rebuilt"]) == (1, 1, True)
    assert report["chunks"] == report["embedded"] > 1 and report["path"] == str((project / "vectors").resolve())
    assert "indexed 1 documents" in first.stderr
    assert (project / "vectors" / "chroma.sqlite3").is_file()

    again = index(cwd=project, MLOPS_STATE_DIR=str(tmp_path / "state"))
    assert again.returncode == 0, again.stderr
    assert (json.loads(again.stdout)["embedded"], json.loads(again.stdout)["unchanged"]) == (0, 1)
    assert not (project / ".mlops").exists()  # the state dir came from $MLOPS_STATE_DIR

    elsewhere = index("--root", str(tmp_path / "empty"), "--state-dir", str(tmp_path / "state"))
    assert elsewhere.returncode == 1 and elsewhere.stdout == ""
    assert elsewhere.stderr.strip() == f"rag.documents[0]: 'docs/**/*.md' matches no file under {tmp_path / 'empty'}"
