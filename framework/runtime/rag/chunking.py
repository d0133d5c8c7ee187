"""Split documents into chunks with `rag.chunking` (recursive character splitting).

langchain's RecursiveCharacterTextSplitter tries `separators` in order, keeps each
separator at the start of the piece it opens (`keep_separator="start"`, so with the
recipe's `"\\n## "` a heading stays with its section) and merges pieces up to `size`
characters, carrying up to `overlap` characters of the previous chunk into the next.

Markdown chunks also get the nearest heading above their start as `title` and the
heading path as `section` (`Serving > Dynamic batching`); code fences are not headings.
Ids are `<source>#<index>`: stable across runs, and the index re-uses a document's ids
when it is re-chunked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from framework.runtime.rag.documents import Document

_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


@dataclass(frozen=True)
class Chunk:
    id: str  # "<source>#<index>"
    source: str
    text: str
    index: int  # position in its document, from 0
    document_sha256: str
    title: str | None = None  # nearest markdown heading at or above the chunk's start
    section: str | None = None  # heading path, "Top > Sub > Subsub"
    start: int = 0  # character offset in the document's text

    def embedding_text(self, document_title: str | None = None) -> str:
        """What is embedded: the heading path (document title first) above the text.

        A chunk in the middle of a section rarely repeats what the section is about;
        the headings say it, and they are what users' questions name.
        """
        context = [t for t in (document_title, self.section) if t]
        if len(context) == 2 and self.section.split(" > ")[0] == document_title:
            context = [self.section]
        return "\n".join([" > ".join(context), self.text]) if context else self.text


def splitter(chunking):
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    return RecursiveCharacterTextSplitter(
        chunk_size=chunking.size,
        chunk_overlap=chunking.overlap,
        separators=list(chunking.separators),
        keep_separator="start",
        is_separator_regex=False,
        strip_whitespace=True,
    )


def headings(text: str) -> list[tuple[int, int, str]]:
    """(offset, level, title) of each markdown ATX heading outside code fences."""
    found = []
    fence: str | None = None
    offset = 0
    for line in text.splitlines(keepends=True):
        opener = _FENCE.match(line)
        if opener:
            if fence is None:
                fence = opener.group(1)
            elif opener.group(1) == fence:
                fence = None
        elif fence is None:
            match = _HEADING.match(line.rstrip("\n"))
            if match:
                found.append((offset, len(match.group(1)), _plain(match.group(2))))
        offset += len(line)
    return found


def _plain(title: str) -> str:
    return re.sub(r"[`*_]", "", title).strip()


def document_title(document: Document) -> str | None:
    """The first level-1 heading of a markdown document, else None."""
    if document.kind != "markdown":
        return None
    for _, level, title in headings(document.text):
        if level == 1:
            return title
    return None


def _section_at(marks: list[tuple[int, int, str]], position: int) -> tuple[str | None, str | None]:
    path: list[tuple[int, str]] = []
    for offset, level, title in marks:
        if offset > position:
            break
        path = [(lvl, t) for lvl, t in path if lvl < level] + [(level, title)]
    if not path:
        return None, None
    return path[-1][1], " > ".join(t for _, t in path)


def chunk(document: Document, chunking, splitter_=None) -> list[Chunk]:
    """The chunks of one document, in order; none for a document without text."""
    if not document.text.strip():
        return []
    pieces = (splitter_ or splitter(chunking)).split_text(document.text)
    marks = headings(document.text) if document.kind == "markdown" else []
    chunks = []
    search_from = 0
    for index, text in enumerate(pieces):
        start = document.text.find(text, search_from)
        if start < 0:  # not expected (pieces are substrings); keep order anyway
            start = search_from
        search_from = start + 1
        title, section = _section_at(marks, start)
        chunks.append(
            Chunk(
                id=f"{document.source}#{index}",
                source=document.source,
                text=text,
                index=index,
                document_sha256=document.sha256,
                title=title,
                section=section,
                start=start,
            )
        )
    return chunks
