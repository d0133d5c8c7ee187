"""Load the corpus that `rag.documents` names: files, folders and globs (`**` included).

Markdown (`.md`, `.markdown`), plain text (`.txt`, `.text`, `.rst`) and PDF (text layer
through pypdf). Each document is identified by its path relative to the project root
(posix), carries the sha256 of its bytes (what incremental indexing compares) and
comes in a deterministic order (sorted by that path). A pattern that matches nothing is
an error naming `rag.documents`: a typo must not silently shrink the corpus.
"""

from __future__ import annotations

import glob
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from framework.errors import MlopsError, Problem

MARKDOWN_SUFFIXES = (".md", ".markdown")
TEXT_SUFFIXES = (".txt", ".text", ".rst")
PDF_SUFFIXES = (".pdf",)
SUFFIXES = MARKDOWN_SUFFIXES + TEXT_SUFFIXES + PDF_SUFFIXES
_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class Document:
    source: str  # path relative to the project root, posix (absolute when outside it)
    text: str
    sha256: str  # of the file's bytes

    @property
    def kind(self) -> str:
        return document_kind(self.source)


def document_kind(source: str) -> str:
    suffix = Path(source).suffix.lower()
    if suffix in MARKDOWN_SUFFIXES:
        return "markdown"
    if suffix in PDF_SUFFIXES:
        return "pdf"
    return "text"


def rag_section(recipe_or_rag):
    """The `rag` section of a Recipe, or the section itself."""
    rag = getattr(recipe_or_rag, "rag", recipe_or_rag)
    if rag is None or not hasattr(rag, "documents"):
        raise MlopsError([Problem(None, "rag", "the recipe has no rag section (documents to index)")])
    return rag


def source_name(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def resolve_patterns(patterns: list[str], root: Path) -> list[Path]:
    """Every supported file the patterns name, deduplicated, sorted by source name."""
    root = Path(root).resolve()
    found: dict[str, Path] = {}
    problems: list[Problem] = []
    for i, pattern in enumerate(patterns):
        matched = _match(pattern, root)
        if isinstance(matched, str):
            problems.append(Problem(None, f"rag.documents[{i}]", matched))
            continue
        for path in matched:
            found.setdefault(source_name(path, root), path)
    if problems:
        raise MlopsError(problems)
    return [found[name] for name in sorted(found)]


def _match(pattern: str, root: Path) -> list[Path] | str:
    """The files of one pattern, or the reason it names none."""
    full = Path(os.path.join(root, os.path.expanduser(pattern)))
    supported = ", ".join(SUFFIXES)
    if _GLOB_CHARS & set(pattern):
        hits = [Path(p) for p in glob.glob(str(full), recursive=True)]
        files = sorted(p.resolve() for p in hits if p.is_file() and p.suffix.lower() in SUFFIXES)
        if not files:
            what = "no file" if not hits else f"no {supported} file"
            return f"'{pattern}' matches {what} under {root}"
        return files
    if full.is_dir():
        files = sorted(
            p.resolve() for p in full.rglob("*")
            if p.is_file() and p.suffix.lower() in SUFFIXES
            and not any(part.startswith(".") for part in p.relative_to(full).parts)
        )
        return files or f"folder '{pattern}' holds no {supported} file"
    if full.is_file():
        if full.suffix.lower() not in SUFFIXES:
            return f"'{pattern}' is not a supported document ({supported})"
        return [full.resolve()]
    return f"'{pattern}' does not exist under {root}"


def read_document(path: Path, root: Path) -> Document:
    path = Path(path)
    root = Path(root).resolve()
    source = source_name(path.resolve(), root)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MlopsError([Problem(None, "rag.documents", f"cannot read {source}: {exc.strerror or exc}")]) from None
    digest = hashlib.sha256(data).hexdigest()
    if path.suffix.lower() in PDF_SUFFIXES:
        text = _pdf_text(path, source)
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise MlopsError(
                [Problem(None, "rag.documents", f"{source} is not UTF-8 text (byte {exc.start}); convert it or leave it out")]
            ) from None
    return Document(source=source, text=text.replace("\r\n", "\n"), sha256=digest)


def _pdf_text(path: Path, source: str) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(path)
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PdfReadError, OSError, ValueError) as exc:
        raise MlopsError([Problem(None, "rag.documents", f"{source}: cannot read the PDF: {exc}")]) from None
    return "\n\n".join(page.strip() for page in pages if page.strip())


def load_documents(recipe_or_rag, root: Path) -> list[Document]:
    """The documents of `rag.documents` (a Recipe or its Rag section), sorted by source."""
    rag = rag_section(recipe_or_rag)
    return [read_document(path, root) for path in resolve_patterns(list(rag.documents), root)]
