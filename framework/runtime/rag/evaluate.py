"""Retrieval evaluation: recall@k and MRR on a labelled question set, and its gates.

`evaluation.retrieval.questions` (relative to the project root) is JSONL, one object a
line, or YAML/JSON holding a list of such objects:

    {"question": "How do I ...?", "source": "docs/serving.md", "section": "Dynamic batching"}

`source` is the document (path as in `rag.documents`, relative to the root) that
answers it; `sources` (a list) when several do; `section` is informative. Each
question is searched as the recipe's retriever searches (`rag.retriever.search`,
`fetch_k`, `lambda_mult`) with `evaluation.retrieval.k` results. A question is a hit
when a chunk of an expected document is among them; recall@k is the share of hits and
MRR the mean of 1 / (rank of the first chunk from an expected document), 0 when none.
The gates are `evaluation.gates.min_recall_at_k` / `min_mrr` (any `min_`/`max_` of
`recall_at_k` or `mrr`), as framework.runtime.training.gates' GateReport.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from framework.errors import Location, MlopsError, Problem
from framework.runtime.training.gates import GateReport, _check
from framework.runtime.rag.documents import rag_section


@dataclass(frozen=True)
class LabelledQuestion:
    question: str
    sources: tuple[str, ...]
    section: str | None = None
    line: int | None = None  # in the questions file (JSONL), for error messages


@dataclass(frozen=True)
class QuestionResult:
    question: str
    expected: tuple[str, ...]
    ranks: tuple[int, ...]  # 1-based ranks of the top-k chunks from an expected document
    retrieved: tuple[str, ...]  # sources of the top-k chunks, in rank order
    section: str | None = None

    @property
    def hit(self) -> bool:
        return bool(self.ranks)

    @property
    def first_rank(self) -> int | None:
        return self.ranks[0] if self.ranks else None

    @property
    def reciprocal_rank(self) -> float:
        return 1.0 / self.ranks[0] if self.ranks else 0.0

    # Read like a dict too (row["question"], row.get("hit")), e.g. by the CLI.
    _KEYS = ("question", "expected", "ranks", "retrieved", "section", "hit", "first_rank", "reciprocal_rank")

    def __getitem__(self, key: str):
        if key not in self._KEYS:
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default=None):
        return getattr(self, key) if key in self._KEYS else default

    def to_dict(self) -> dict:
        return {key: getattr(self, key) for key in self._KEYS}


@dataclass
class RetrievalReport:
    k: int
    recall_at_k: float
    mrr: float
    questions: int
    rows: list[QuestionResult] = field(default_factory=list)
    search: str = "mmr"
    seconds: float = 0.0

    def metrics(self) -> dict[str, float]:
        """By the metric names of `evaluation.metrics` (recall_at_k, mrr)."""
        return {"recall_at_k": self.recall_at_k, "mrr": self.mrr}

    @property
    def misses(self) -> list[QuestionResult]:
        return [row for row in self.rows if not row.hit]

    def to_dict(self) -> dict:
        """JSON-safe: metrics, settings and one object per question."""
        data = {key: value for key, value in asdict(self).items() if key != "rows"}
        data["rows"] = [{k: list(v) if isinstance(v, tuple) else v for k, v in row.to_dict().items()} for row in self.rows]
        return data

    def summary(self) -> str:
        return (
            f"retrieval ({self.search}) on {self.questions} questions: recall@{self.k} "
            f"{self.recall_at_k:.3f}, MRR {self.mrr:.3f}"
        )

    def rich_table(self, only_misses: bool = False):
        from rich.table import Table

        table = Table(title=f"retrieval evaluation (top {self.k})", title_justify="left")
        table.add_column("question")
        table.add_column("expected")
        table.add_column("rank", justify="right")
        table.add_column("retrieved")
        for row in self.rows:
            if only_misses and row.hit:
                continue
            rank = "-" if row.first_rank is None else str(row.first_rank)
            style = None if row.hit else "red"
            table.add_row(row.question, ", ".join(row.expected), rank, ", ".join(dict.fromkeys(row.retrieved)), style=style)
        return table


def questions_path(recipe, root: Path) -> Path:
    retrieval = recipe.evaluation.retrieval if recipe.evaluation is not None else None
    if retrieval is None:
        raise MlopsError([Problem(None, "evaluation.retrieval", "the recipe has no retrieval evaluation (questions, k)")])
    path = Path(retrieval.questions).expanduser()
    return path if path.is_absolute() else Path(root).resolve() / path


def _normalise(source: str) -> str:
    text = str(source).strip().replace("\\", "/")
    while text.startswith("./"):
        text = text[2:]
    return text


def load_questions(path: Path, display: str | None = None) -> list[LabelledQuestion]:
    """The labelled questions of a JSONL (or YAML/JSON list) file."""
    path = Path(path)
    display = display or str(path)
    if not path.is_file():
        raise MlopsError([Problem(None, "evaluation.retrieval.questions", f"{display} does not exist")])
    text = path.read_text(encoding="utf-8")
    records: list[tuple[int | None, object]] = []
    if path.suffix.lower() in (".yaml", ".yml", ".json"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise MlopsError([Problem(Location(display), "", f"not valid YAML/JSON: {exc}")]) from None
        if not isinstance(data, list):
            raise MlopsError([Problem(Location(display), "", "must be a list of {question, source} objects")])
        records = [(None, item) for item in data]
    else:
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            try:
                records.append((number, json.loads(line)))
            except json.JSONDecodeError as exc:
                raise MlopsError([Problem(Location(display, number), "", f"not a JSON object: {exc.msg}")]) from None
    questions, problems = [], []
    for number, item in records:
        where = Location(display, number)
        if not isinstance(item, dict):
            problems.append(Problem(where, "", "each entry must be an object with question and source"))
            continue
        unknown = sorted(set(item) - {"question", "source", "sources", "section", "notes"})
        question = item.get("question")
        sources = item.get("sources", item.get("source"))
        if isinstance(sources, str):
            sources = [sources]
        if unknown:
            problems.append(Problem(where, unknown[0], "unknown field; known: question, source, sources, section, notes"))
        elif not isinstance(question, str) or not question.strip():
            problems.append(Problem(where, "question", "must be a non-empty string"))
        elif not sources or not all(isinstance(s, str) and s.strip() for s in sources):
            problems.append(Problem(where, "source", "must name the document that answers the question"))
        else:
            section = item.get("section")
            questions.append(
                LabelledQuestion(question.strip(), tuple(_normalise(s) for s in sources), section if isinstance(section, str) else None, number)
            )
    if problems:
        raise MlopsError(problems)
    if not questions:
        raise MlopsError([Problem(Location(display), "", "holds no questions")])
    return questions


def evaluate_retrieval(
    recipe,
    root: Path,
    state_dir: Path | None = None,
    *,
    index: bool = True,
    retriever=None,
    console=None,
) -> RetrievalReport:
    """Index the corpus (unless index=False: only what changed is embedded), then
    search every labelled question and score the ranks."""
    from framework.runtime.rag.documents import resolve_patterns, source_name
    from framework.runtime.rag.index import index_corpus
    from framework.runtime.rag.retrieve import Retriever

    started = time.perf_counter()
    root = Path(root).resolve()
    rag = rag_section(recipe)
    k = recipe.evaluation.retrieval.k if recipe.evaluation and recipe.evaluation.retrieval else None
    path = questions_path(recipe, root)
    questions = load_questions(path, source_name(path, root))
    corpus = {source_name(p, root) for p in resolve_patterns(list(rag.documents), root)}
    unknown = [
        Problem(Location(source_name(path, root), q.line), "source", f"'{s}' is not one of the documents of rag.documents")
        for q in questions
        for s in q.sources
        if s not in corpus
    ]
    if unknown:
        raise MlopsError(unknown)
    if index:
        index_corpus(recipe, root, state_dir, console=console)
    retriever = retriever or Retriever(recipe, root, state_dir)
    rows = []
    for q in questions:
        hits = retriever.search(q.question, top_k=k)
        retrieved = tuple(hit.source for hit in hits)
        ranks = tuple(rank for rank, source in enumerate(retrieved, start=1) if source in q.sources)
        rows.append(QuestionResult(q.question, q.sources, ranks, retrieved, q.section))
    n = len(rows)
    report = RetrievalReport(
        k=k,
        recall_at_k=sum(row.hit for row in rows) / n,
        mrr=sum(row.reciprocal_rank for row in rows) / n,
        questions=n,
        rows=rows,
        search=rag.retriever.search,
        seconds=time.perf_counter() - started,
    )
    if console is not None:
        console.print(report.summary())
    return report


def retrieval_gates(recipe, report: RetrievalReport) -> GateReport:
    """One GateResult per `min_<metric>` / `max_<metric>` threshold of evaluation.gates.

    A threshold on a metric this evaluation does not compute fails (not measured), as
    in framework.runtime.training.gates; the model gates (latency, size, fairness, ONNX parity)
    do not apply to retrieval and are left out.
    """
    metrics = report.metrics()
    results = []
    for key, threshold in sorted(recipe.evaluation.gates.thresholds().items()):
        bound, metric = key.split("_", 1)
        results.append(_check(key, threshold, metrics.get(metric), ">=" if bound == "min" else "<="))
    return GateReport(results)
