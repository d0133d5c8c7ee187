"""rag.documents: files, folders and globs; markdown, text and PDF; clear errors."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from framework.errors import MlopsError
from framework.recipe.rag import Rag
from framework.runtime.rag.documents import load_documents
from tests.rag import REPO, support_recipe, write


def rag(*documents: str) -> Rag:
    return Rag(documents=list(documents))


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    write(
        tmp_path,
        {
            "README.md": "# Top\n\nThe readme.\n",
            "docs/a.md": "# A\n\nAlpha.\n",
            "docs/guide/b.md": "# B\n\nBeta.\n",
            "docs/guide/deep/c.markdown": "# C\n\nGamma.\n",
            "docs/notes.txt": "plain text notes\r\nsecond line\n",
            "docs/image.png": "not a document",
            "docs/.hidden/secret.md": "# hidden\n",
        },
    )
    return tmp_path


def test_globs_with_double_star_match_every_depth_sorted(corpus: Path) -> None:
    docs = load_documents(rag("docs/**/*.md"), corpus)
    assert [d.source for d in docs] == ["docs/a.md", "docs/guide/b.md"]


def test_files_folders_and_globs_together_deduplicated(corpus: Path) -> None:
    docs = load_documents(rag("README.md", "docs", "docs/**/*.md"), corpus)
    assert [d.source for d in docs] == [
        "README.md", "docs/a.md", "docs/guide/b.md", "docs/guide/deep/c.markdown", "docs/notes.txt",
    ]
    by_source = {d.source: d for d in docs}
    assert by_source["docs/notes.txt"].text == "plain text notes\nsecond line\n"  # CRLF normalised
    assert by_source["docs/a.md"].kind == "markdown" and by_source["docs/notes.txt"].kind == "text"
    raw = (corpus / "docs/a.md").read_bytes()
    assert by_source["docs/a.md"].sha256 == hashlib.sha256(raw).hexdigest()


def test_order_is_deterministic_whatever_the_pattern_order(corpus: Path) -> None:
    first = load_documents(rag("docs/**/*.md", "README.md"), corpus)
    second = load_documents(rag("README.md", "docs/guide/b.md", "docs/a.md"), corpus)
    assert [d.source for d in first] == [d.source for d in second]


def test_patterns_that_match_nothing_name_rag_documents(corpus: Path) -> None:
    with pytest.raises(MlopsError) as error:
        load_documents(rag("README.md", "manual/**/*.md", "missing.md", "docs/*.png"), corpus)
    message = str(error.value)
    assert "rag.documents[1]: 'manual/**/*.md' matches no file" in message
    assert "rag.documents[2]: 'missing.md' does not exist" in message
    assert "rag.documents[3]: 'docs/*.png' matches no .md" in message
    assert "README.md" not in message.replace(str(corpus), "")


def test_an_unsupported_file_named_explicitly_is_refused(corpus: Path) -> None:
    with pytest.raises(MlopsError, match=r"rag.documents\[0\]: 'docs/image.png' is not a supported document"):
        load_documents(rag("docs/image.png"), corpus)


def test_text_that_is_not_utf8_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "latin.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(MlopsError, match="latin.txt is not UTF-8"):
        load_documents(rag("*.txt"), tmp_path)


def _pdf_bytes(text: str) -> bytes:
    from pypdf import PdfWriter
    from pypdf.generic import DictionaryObject, NameObject, StreamObject

    writer = PdfWriter()
    add = getattr(writer, "_add_object", None) or getattr(writer, "add_object", None)
    if add is None:
        pytest.skip("this pypdf has no way to add objects to a new PDF")
    page = writer.add_blank_page(width=612, height=792)
    font = DictionaryObject(
        {NameObject("/Type"): NameObject("/Font"), NameObject("/Subtype"): NameObject("/Type1"),
         NameObject("/BaseFont"): NameObject("/Helvetica")}
    )
    page[NameObject("/Resources")] = DictionaryObject({NameObject("/Font"): DictionaryObject({NameObject("/F1"): add(font)})})
    content = StreamObject()
    content.set_data(f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode("latin-1"))
    page[NameObject("/Contents")] = add(content)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def test_pdf_text_is_extracted(tmp_path: Path) -> None:
    (tmp_path / "manuals").mkdir()
    data = _pdf_bytes("Refunds are issued within 14 days")
    (tmp_path / "manuals" / "policy.pdf").write_bytes(data)
    [doc] = load_documents(rag("manuals/*.pdf"), tmp_path)
    assert doc.source == "manuals/policy.pdf" and doc.kind == "pdf"
    assert "Refunds are issued within 14 days" in doc.text
    assert doc.sha256 == hashlib.sha256(data).hexdigest()


def test_a_broken_pdf_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4 this is not a pdf")
    with pytest.raises(MlopsError, match="broken.pdf: cannot read the PDF"):
        load_documents(rag("broken.pdf"), tmp_path)


def test_the_support_assistant_corpus(tmp_path: Path) -> None:
    docs = load_documents(support_recipe(), REPO)
    sources = [d.source for d in docs]
    assert sources[0] == "README.md"
    pages = [s for s in sources if s.startswith("docs/")]
    assert 6 <= len(pages) <= 10 and all(s.endswith(".md") for s in pages)
    for doc in docs:
        lines = doc.text.count("\n")
        assert doc.source == "README.md" or 60 <= lines <= 200, (doc.source, lines)
        assert doc.source == "README.md" or doc.text.count("\n## ") >= 4, doc.source
