"""Retrieval evaluation: the labelled set, recall@k and MRR, the gates, the real corpus."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import pytest

from framework.errors import MlopsError
from framework.runtime.rag.documents import load_documents
from framework.runtime.rag.evaluate import evaluate_retrieval, load_questions, questions_path, retrieval_gates
from framework.runtime.rag.retrieve import Hit
from tests.rag import REPO, support_recipe, tiny_recipe, write


def jsonl(*rows) -> str:
    return "".join((row if isinstance(row, str) else json.dumps(row)) + "\n" for row in rows)


def test_questions_file_jsonl_and_yaml(tmp_path: Path) -> None:
    (tmp_path / "q.jsonl").write_text(
        jsonl(
            {"question": "How?", "source": "./docs/a.md", "section": "Intro"},
            "",
            "# a comment",
            {"question": "Which?", "sources": ["docs/a.md", "README.md"]},
        )
    )
    first, second = load_questions(tmp_path / "q.jsonl")
    assert (first.question, first.sources, first.section, first.line) == ("How?", ("docs/a.md",), "Intro", 1)
    assert (second.sources, second.line) == (("docs/a.md", "README.md"), 4)
    (tmp_path / "q.yaml").write_text("- question: How?\n  source: docs/a.md\n")
    [only] = load_questions(tmp_path / "q.yaml")
    assert only.sources == ("docs/a.md",)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (jsonl({"question": "ok", "source": "a.md"}, "{not json"), r"q.jsonl:2: not a JSON object"),
        (jsonl({"question": "ok"}), r"q.jsonl:1: source: must name the document"),
        (jsonl({"question": " ", "source": "a.md"}), r"q.jsonl:1: question: must be a non-empty string"),
        (jsonl({"question": "ok", "source": "a.md", "answer": "x"}), r"q.jsonl:1: answer: unknown field"),
        ("\n", r"q.jsonl: holds no questions"),
    ],
)
def test_questions_file_errors_point_at_the_line(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "q.jsonl").write_text(content)
    with pytest.raises(MlopsError, match=message):
        load_questions(tmp_path / "q.jsonl", "q.jsonl")


class ScriptedRetriever:
    """Answers each question with the sources scripted for it."""

    def __init__(self, answers: dict[str, list[str]]):
        self.answers = answers

    def search(self, question: str, top_k: int | None = None) -> list[Hit]:
        sources = self.answers[question][:top_k]
        return [Hit(source=s, text="", score=1.0 - i / 10, chunk_id=f"{s}#{i}") for i, s in enumerate(sources)]


def test_recall_and_mrr_are_scored_on_the_top_k(tmp_path: Path) -> None:
    write(tmp_path, {"a.md": "# A\n", "b.md": "# B\n", "c.md": "# C\n"})
    (tmp_path / "questions.jsonl").write_text(
        jsonl(
            {"question": "q1", "source": "a.md"},  # rank 1
            {"question": "q2", "source": "b.md"},  # rank 3
            {"question": "q3", "source": "c.md"},  # only at rank 4: beyond k=3, a miss
            {"question": "q4", "sources": ["b.md", "c.md"]},  # rank 2 (either counts)
        )
    )
    recipe = tiny_recipe(tmp_path / "vectors", ["*.md"], questions="questions.jsonl")
    scripted = ScriptedRetriever({
        "q1": ["a.md", "b.md", "a.md"], "q2": ["a.md", "a.md", "b.md"],
        "q3": ["a.md", "b.md", "a.md", "c.md"], "q4": ["a.md", "c.md", "b.md"],
    })
    report = evaluate_retrieval(recipe, tmp_path, tmp_path / "state", index=False, retriever=scripted)
    assert (report.k, report.questions) == (3, 4)
    assert report.recall_at_k == pytest.approx(3 / 4)
    assert report.mrr == pytest.approx((1 + 1 / 3 + 0 + 1 / 2) / 4)
    q1, q2, q3, q4 = report.rows
    assert (q1.ranks, q2.ranks, q3.ranks, q4.ranks) == ((1, 3), (3,), (), (2, 3))
    assert [r.hit for r in report.rows] == [True, True, False, True] and report.misses == [q3]
    assert q3["question"] == "q3" and q3.get("hit") is False and q3.get("nope", 7) == 7
    assert json.loads(json.dumps(report.to_dict()))["rows"][2]["retrieved"] == ["a.md", "b.md", "a.md"]
    assert report.summary() == "retrieval (similarity) on 4 questions: recall@3 0.750, MRR 0.458"

    gates = retrieval_gates(recipe, report)
    assert [(g.name, g.passed) for g in gates.results] == [("min_mrr", False), ("min_recall_at_k", False)]
    assert gates.failures[1].message() == "observed 0.75, must be at least 0.8"
    lenient = tiny_recipe(tmp_path / "vectors", ["*.md"], questions="questions.jsonl",
                          gates={"min_recall_at_k": 0.7, "min_mrr": 0.4, "max_mrr": 1.0})
    assert retrieval_gates(lenient, report).passed
    from rich.console import Console

    console = Console(record=True, width=120, file=io.StringIO())
    console.print(gates.rich_table())
    console.print(report.rich_table(only_misses=True))
    text = console.export_text()
    assert "min_recall_at_k" in text and "FAIL" in text and "q3" in text and "q1" not in text


def test_labels_must_name_documents_of_the_corpus(tmp_path: Path) -> None:
    write(tmp_path, {"a.md": "# A\n"})
    (tmp_path / "questions.jsonl").write_text(jsonl({"question": "q", "source": "a.md"}, {"question": "r", "source": "gone.md"}))
    recipe = tiny_recipe(tmp_path / "vectors", ["*.md"], questions="questions.jsonl")
    with pytest.raises(MlopsError, match=r"questions.jsonl:2: source: 'gone.md' is not one of the documents of rag.documents"):
        evaluate_retrieval(recipe, tmp_path, tmp_path / "state", index=False, retriever=ScriptedRetriever({}))


def test_the_support_questions_are_labelled_with_real_documents() -> None:
    recipe = support_recipe()
    questions = load_questions(questions_path(recipe, REPO))
    assert 30 <= len(questions) <= 40
    assert len({q.question for q in questions}) == len(questions)
    corpus = {d.source for d in load_documents(recipe, REPO)}
    assert {s for q in questions for s in q.sources} <= corpus
    primary = {q.sources[0] for q in questions}
    assert {s for s in corpus if s.startswith("docs/")} <= primary  # every page is asked about


@pytest.mark.slow
def test_retrieval_on_the_real_corpus_meets_the_recipe_gates(tmp_path: Path) -> None:
    recipe = support_recipe()
    vectors = recipe.rag.vector_store.model_copy(update={"path": str(tmp_path / "vectors")})
    recipe = recipe.model_copy(update={"rag": recipe.rag.model_copy(update={"vector_store": vectors})})
    started = time.perf_counter()
    report = evaluate_retrieval(recipe, REPO, tmp_path / "state")
    print(f"\n{report.summary()} in {time.perf_counter() - started:.1f} s (indexing included)")
    for row in report.misses:
        print(f"  missed: {row.question} (expected {', '.join(row.expected)}; got {', '.join(row.retrieved)})")
    assert report.k == 5 and report.search == "mmr"
    assert report.recall_at_k >= 0.8
    assert report.mrr >= 0.5
    assert retrieval_gates(recipe, report).passed
