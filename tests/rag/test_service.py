"""The RAG service's HTTP contract: POST /query -> {answer, sources, latency_ms}, the
recipe's prompt with the retrieved context, a real generation endpoint (the CPU
fallback server), 4xx for bad questions, the serving metrics."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest

from framework import api
from framework.runtime.rag.llm import OpenAIClient, TransformersGenerator, build_tiny_random
from framework.runtime.rag.openai_app import OpenAIApp
from framework.runtime.rag.service import RagApp, build_prompt
from framework.runtime.serving.host import EmbeddedServer
from tests.conftest import REPO


@dataclass
class Hit:
    source: str
    text: str
    score: float
    chunk_id: str
    title: str | None = None


class Retriever:
    """The two chunks a question about drift should find."""

    def __init__(self):
        self.asked = []

    def search(self, question, top_k=None):
        self.asked.append((question, top_k))
        hits = [Hit("docs/monitoring.md", "mlops monitor exits 3 on drift.", 0.91, "docs/monitoring.md#2", "Exit codes"),
                Hit("README.md", "PSI over quantile bins per feature.", 0.72, "README.md#40")]
        return hits[: top_k or 2]


class Recording:
    """A generator that records its prompt and answers from it."""

    name = "recording"

    def __init__(self):
        self.prompts = []

    def chat(self, messages, max_tokens=256, temperature=0.0, stream=False):
        self.prompts.append(messages[0]["content"])
        return "  It exits 3.  "


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def recipe():
    return api.load_recipe("support_assistant", project=REPO).recipe


def test_the_prompt_is_the_recipes_template_with_numbered_sources(recipe):
    prompt = build_prompt(recipe.rag.prompt, " What does monitor exit with? ", Retriever().search("q"))
    assert "[1] (docs/monitoring.md) mlops monitor exits 3 on drift.\n\n[2] (README.md) PSI over" in prompt
    assert prompt.endswith("Question: What does monitor exit with?\nAnswer:")


def test_query_answers_with_sources_and_counts_it(recipe):
    retriever, generator = Retriever(), Recording()
    with EmbeddedServer(RagApp(recipe, retriever, generator)) as server, httpx.Client(base_url=f"http://{server.url}") as http:
        response = http.post("/query", json={"question": "What does monitor exit with?", "top_k": 1})
        metrics = http.get("/metrics").text
        assert http.get("/health").status_code == 200
    assert response.status_code == 200
    body = response.json()
    assert body["answer"] == "It exits 3." and body["model"] == "recording"
    assert body["sources"] == [{"source": "docs/monitoring.md", "title": "Exit codes", "score": 0.91,
                                "chunk_id": "docs/monitoring.md#2", "excerpt": "mlops monitor exits 3 on drift."}]
    assert body["latency_ms"] >= body["retrieval_ms"] >= 0
    assert retriever.asked == [("What does monitor exit with?", 1)]
    assert "mlops monitor exits 3 on drift." in generator.prompts[0] and "PSI" not in generator.prompts[0]
    assert f'mlops_requests_total{{model="{recipe.registered_model}",status="200",version="rag"}} 1.0' in metrics


@pytest.mark.parametrize(
    "body, message",
    [
        (b"{", "malformed JSON in the request body: "),
        (b'["q"]', 'the body must be a JSON object: {"question": "...", "top_k": 4}'),
        (b'{"question": "  "}', "question must be a non-empty string"),
        (b'{"question": "q", "top_k": 0}', "top_k must be an integer from 1 to 20, got 0"),
        (b'{"question": "q", "top_k": "3"}', "top_k must be an integer from 1 to 20, got '3'"),
    ],
)
def test_bad_questions_are_400s(recipe, body, message):
    with EmbeddedServer(RagApp(recipe, Retriever(), Recording())) as server, httpx.Client(base_url=f"http://{server.url}") as http:
        response = http.post("/query", content=body)
        assert http.get("/query").status_code == 405
    assert response.status_code == 400 and response.json()["error"].startswith(message)


def test_an_unreachable_endpoint_is_a_502_saying_where(recipe):
    client = OpenAIClient("http://127.0.0.1:9", "x", timeout=2)
    with EmbeddedServer(RagApp(recipe, Retriever(), client)) as server, httpx.Client(base_url=f"http://{server.url}") as http:
        response = http.post("/query", json={"question": "q"})
    assert response.status_code == 502
    assert response.json()["error"].startswith("answering failed: rag.llm_endpoint: cannot reach http://127.0.0.1:9/v1/chat/completions")


def test_through_the_fallback_llm_server(recipe, tmp_path):
    """The service generates over HTTP with the OpenAI client, as against vLLM."""
    generator = TransformersGenerator(build_tiny_random(tmp_path / "tiny"), name="tiny")
    with EmbeddedServer(OpenAIApp(generator, served_name="tiny")) as llm:
        app = RagApp(recipe, Retriever(), OpenAIClient(f"http://{llm.url}", "tiny"), max_tokens=8)
        with EmbeddedServer(app) as server, httpx.Client(base_url=f"http://{server.url}", timeout=60) as http:
            body = http.post("/query", json={"question": "What does monitor exit with?"}).json()
    assert body["model"] == "tiny" and [s["source"] for s in body["sources"]] == ["docs/monitoring.md", "README.md"]
    prompt = build_prompt(recipe.rag.prompt, "What does monitor exit with?", Retriever().search("q"))
    assert body["answer"] == generator.chat([{"role": "user", "content": prompt}], max_tokens=8).strip()


def test_smoke_asks_the_labelled_questions(recipe, monkeypatch):
    """`mlops smoke` of a RAG recipe: POST /query with evaluation.retrieval.questions."""
    from tests.conftest import run_cli

    monkeypatch.chdir(REPO)  # the labelled questions are eval/support_questions.jsonl
    retriever = Retriever()
    with EmbeddedServer(RagApp(recipe, retriever, Recording())) as server:
        result = run_cli("smoke", "support_assistant", "--url", f"http://{server.url}", "--requests", "6")
    assert result.exit_code == 0, result.stderr
    assert "6/6 requests ok" in result.stdout and "answered by version recording: 6" in result.stdout
    assert len(retriever.asked) == 6 and len({q for q, _ in retriever.asked}) == 6  # six different questions

    class Silent(Recording):
        def chat(self, *args, **kwargs):
            return "   "

    with EmbeddedServer(RagApp(recipe, Retriever(), Silent())) as server:
        failed = run_cli("smoke", "support_assistant", "--url", f"http://{server.url}", "--requests", "2")
    assert failed.exit_code == 1
    assert failed.stderr.startswith("smoke: question 1: no answer text in {'answer': ''")
