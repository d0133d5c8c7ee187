"""`mlops check-data` for a RAG recipe: the corpus `rag.documents` names, loaded and
split as indexing will, with one check per document (it has text to embed) and for the
corpus (at least one document and one chunk). A pattern that matches nothing or a file
that cannot be read is an error (exit 1), as when indexing.
"""

from __future__ import annotations

import html
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPORT_JSON = "corpus_report.json"
REPORT_HTML = "corpus_report.html"


@dataclass(frozen=True)
class DocumentRow:
    source: str
    kind: str
    characters: int
    chunks: int

    @property
    def passed(self) -> bool:
        return self.chunks > 0


@dataclass
class CorpusReport:
    patterns: list[str]
    documents: list[DocumentRow] = field(default_factory=list)

    @property
    def chunks(self) -> int:
        return sum(d.chunks for d in self.documents)

    @property
    def failures(self) -> list[str]:
        problems = [f"{d.source} has no text to index" for d in self.documents if not d.passed]
        if not self.documents:
            problems.append("rag.documents names no document")
        return problems

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict:
        return {"patterns": self.patterns, "passed": self.passed, "documents": len(self.documents), "chunks": self.chunks,
                "failures": self.failures, "rows": [asdict(d) for d in self.documents]}

    def write(self, directory: Path) -> tuple[Path, Path]:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        rows = "\n".join(f"<tr><td>{html.escape(d.source)}</td><td>{d.kind}</td><td>{d.characters}</td><td>{d.chunks}</td></tr>"
                         for d in self.documents)
        page = (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>corpus report</title></head><body>"
                f"<h1>Corpus report</h1><p>{len(self.documents)} documents, {self.chunks} chunks: "
                f"{'passed' if self.passed else 'FAILED'}</p><table><tr><th>document</th><th>kind</th><th>characters</th>"
                f"<th>chunks</th></tr>{rows}</table></body></html>\n")
        json_path, html_path = directory / REPORT_JSON, directory / REPORT_HTML
        json_path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        html_path.write_text(page, encoding="utf-8")
        return json_path, html_path

    def to_markdown(self) -> str:
        from framework.runtime.github_actions import markdown_table

        status = "passed" if self.passed else "**FAILED**: " + "; ".join(self.failures)
        rows = [(f"`{d.source}`", d.kind, d.characters, d.chunks) for d in self.documents]
        return (f"### Corpus report\n\n{len(self.documents)} documents, {self.chunks} chunks: {status}\n\n"
                + markdown_table(("document", "kind", "characters", "chunks"), rows))

    def rich_table(self):
        from rich.table import Table

        table = Table(title=f"corpus: {len(self.documents)} documents, {self.chunks} chunks", title_justify="left")
        for column in ("document", "kind", "characters", "chunks"):
            table.add_column(column, justify="left" if column in ("document", "kind") else "right")
        for d in self.documents:
            table.add_row(d.source, d.kind, str(d.characters), str(d.chunks) if d.passed else "[bold red]0[/bold red]")
        return table


def documents_report(recipe, root: Path) -> CorpusReport:
    from framework.runtime.rag.chunking import chunk, splitter
    from framework.runtime.rag.documents import load_documents

    rag = recipe.rag
    split = splitter(rag.chunking)
    report = CorpusReport(list(rag.documents))
    for document in load_documents(recipe, root):
        report.documents.append(DocumentRow(document.source, document.kind, len(document.text),
                                            len(chunk(document, rag.chunking, split))))
    return report


__all__ = ["CorpusReport", "DocumentRow", "documents_report"]
