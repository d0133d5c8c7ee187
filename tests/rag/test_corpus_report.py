"""`mlops check-data` of a RAG recipe: the corpus rag.documents names, loaded and split
as indexing will, with a report; an empty document fails, a pattern naming nothing is
one error line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO, copy_project, run_cli


@pytest.fixture
def rag_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = copy_project(tmp_path, ("recipes", "docs", "eval"))
    shutil.copy(REPO / "README.md", root / "README.md")
    monkeypatch.chdir(root)
    return root


def test_the_corpus_is_checked_and_reported(rag_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    result = run_cli("check-data", "support_assistant", "--env", "staging")
    assert result.exit_code == 0, result.stderr
    report = json.loads((rag_project / ".mlops" / "reports" / "support-assistant" / "staging" / "data"
                         / "corpus_report.json").read_text())
    documents = len(list((rag_project / "docs").glob("*.md"))) + 1  # and README.md
    assert report["passed"] and report["documents"] == documents and report["chunks"] > documents
    assert summary.read_text().startswith(f"### Corpus report\n\n{documents} documents, {report['chunks']} chunks: passed")


def test_an_empty_document_fails_the_check(rag_project: Path) -> None:
    (rag_project / "docs" / "empty.md").write_text("  \n")
    result = run_cli("check-data", "support_assistant")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == "docs/empty.md has no text to index"


def test_a_pattern_that_names_nothing_is_one_line(rag_project: Path) -> None:
    shutil.rmtree(rag_project / "docs")
    result = run_cli("check-data", "support_assistant")
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().startswith("rag.documents[1]: ")
