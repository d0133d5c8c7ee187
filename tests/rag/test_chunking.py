"""Recursive splitting with rag.chunking: sizes, overlap, separators, headings, ids."""

from __future__ import annotations

import hashlib

from framework.recipe.rag import Chunking
from framework.runtime.rag.chunking import chunk, document_title, headings
from framework.runtime.rag.documents import Document
from tests.rag import REPO, support_recipe


def doc(text: str, source: str = "docs/page.md") -> Document:
    return Document(source=source, text=text, sha256=hashlib.sha256(text.encode()).hexdigest())


WORDS = " ".join(f"word{i:03d}" for i in range(400))  # 3,199 characters, spaces only


def test_chunks_never_exceed_the_size_and_cover_the_text() -> None:
    chunks = chunk(doc(WORDS, "notes.txt"), Chunking(size=200, overlap=50))
    assert len(chunks) > 10
    assert all(len(c.text) <= 200 for c in chunks)
    joined = " ".join(c.text for c in chunks)
    assert all(f"word{i:03d}" in joined for i in range(400))


def test_neighbouring_chunks_overlap_by_at_most_overlap() -> None:
    chunks = chunk(doc(WORDS, "notes.txt"), Chunking(size=200, overlap=50))
    for before, after in zip(chunks, chunks[1:]):
        shared = [w for w in after.text.split() if w in set(before.text.split())]
        assert shared, (before.text, after.text)  # some overlap ...
        assert len(" ".join(shared)) <= 50  # ... never more than asked
        assert after.text.startswith(" ".join(shared))
    no_overlap = chunk(doc(WORDS, "notes.txt"), Chunking(size=200, overlap=0))
    assert sum(len(c.text.split()) for c in no_overlap) == 400


def test_the_first_separator_keeps_sections_whole_and_headings_at_their_start() -> None:
    sections = [f"## Section {n}\n\n" + f"Paragraph {n} sentence. " * 8 for n in range(5)]  # ~190 characters each
    text = "# Guide\n\nIntro line.\n\n" + "\n".join(sections)
    settings = Chunking(size=300, overlap=0, separators=["\n## ", "\n\n", "\n", " ", ""])
    chunks = chunk(doc(text), settings)
    assert len(chunks) == 5  # the short intro is merged with the first section; no two sections fit
    assert chunks[0].text == "# Guide\n\nIntro line.\n\n" + sections[0].strip()
    assert chunks[0].title == "Guide"
    for n, c in enumerate(chunks[1:], start=1):
        assert c.text == sections[n].strip()  # whole, the heading first (keep_separator="start")
        assert c.title == f"Section {n}" and c.section == f"Guide > Section {n}"


def test_a_large_section_falls_back_to_the_next_separators() -> None:
    text = "## Big\n\n" + "\n\n".join(f"Paragraph {n}: " + "x" * 90 for n in range(6))
    chunks = chunk(doc(text), Chunking(size=250, overlap=0, separators=["\n## ", "\n\n", " ", ""]))
    assert len(chunks) >= 3
    assert all(len(c.text) <= 250 for c in chunks)
    assert all(c.text.startswith(("## Big", "Paragraph")) for c in chunks)  # split between paragraphs
    assert all(c.title == "Big" for c in chunks)


def test_nearest_heading_path_and_code_fences_are_not_headings() -> None:
    text = (
        "# Manual\n\n## Install\n\nRun the installer.\n\n### Linux\n\n```bash\n# not a heading\nmake\n```\n\n"
        "Use apt.\n\n## Usage\n\nCall it.\n"
    )
    assert [(level, title) for _, level, title in headings(text)] == [
        (1, "Manual"), (2, "Install"), (3, "Linux"), (2, "Usage"),
    ]
    chunks = chunk(doc(text), Chunking(size=40, overlap=0, separators=["\n## ", "\n\n", "\n", " ", ""]))
    def containing(words: str):
        [found] = [c for c in chunks if words in c.text]
        return found

    assert containing("Use apt.").section == "Manual > Install > Linux"
    assert containing("Use apt.").title == "Linux"
    usage = containing("Call it.")  # the level-3 heading is closed by the next level-2 one
    assert (usage.title, usage.section) == ("Usage", "Manual > Usage")
    assert document_title(doc(text)) == "Manual"


def test_ids_are_stable_and_carry_source_index_and_hash() -> None:
    document = doc(WORDS)
    first = chunk(document, Chunking(size=200, overlap=50))
    second = chunk(document, Chunking(size=200, overlap=50))
    assert [c.id for c in first] == [c.id for c in second] == [f"docs/page.md#{i}" for i in range(len(first))]
    assert {c.document_sha256 for c in first} == {document.sha256}
    assert [c.index for c in first] == list(range(len(first)))
    assert all(document.text[c.start:c.start + len(c.text)] == c.text for c in first)


def test_empty_documents_have_no_chunks_and_text_has_no_titles() -> None:
    assert chunk(doc("  \n\n "), Chunking()) == []
    chunks = chunk(doc("# not markdown here\n\nplain", "notes.txt"), Chunking(size=100, overlap=0))
    assert all(c.title is None and c.section is None for c in chunks)


def test_embedding_text_puts_the_heading_path_above_the_chunk() -> None:
    [first] = chunk(doc("# Guide\n\n## Serving\n\nStart it."), Chunking(size=500, overlap=0))
    assert first.embedding_text("Guide") == f"Guide\n{first.text}"


def test_the_recipe_settings_on_the_real_corpus() -> None:
    from framework.runtime.rag.documents import load_documents

    recipe = support_recipe()
    settings = recipe.rag.chunking
    for document in load_documents(recipe, REPO):
        pieces = chunk(document, settings)
        assert pieces and all(len(p.text) <= settings.size for p in pieces)
        if document.source.startswith("docs/"):
            assert all(p.title for p in pieces), document.source
