"""The CPU fallback: a tiny randomly initialised Llama (built here, nothing downloaded)
served by transformers behind the OpenAI routes, streaming included; the OpenAI and
Ollama clients the RAG service generates with."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import httpx
import pytest

from framework.runtime.rag.llm import OllamaClient, OpenAIClient, TransformersGenerator, build_tiny_random, endpoint_client
from framework.runtime.rag.openai_app import OpenAIApp
from framework.runtime.serving.host import EmbeddedServer

MESSAGES = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "What does mlops apply do?"}]


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def generator(tmp_path_factory):
    folder = build_tiny_random(tmp_path_factory.mktemp("llm") / "tiny-random")
    assert build_tiny_random(folder) == folder  # built once
    return TransformersGenerator(folder, name="tiny")


@pytest.fixture(scope="module")
def server(generator):
    with EmbeddedServer(OpenAIApp(generator, served_name="tiny")) as running:
        yield f"http://{running.url}"


def sse(text: str) -> list:
    events = [line[len("data: "):] for line in text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    return [json.loads(e) for e in events[:-1]]


def test_chat_completion_and_its_stream_say_the_same(server, generator):
    direct = generator.chat(MESSAGES, max_tokens=12)
    with httpx.Client(base_url=server, timeout=60) as http:
        answer = http.post("/v1/chat/completions", json={"model": "tiny", "messages": MESSAGES, "max_tokens": 12}).json()
        assert answer["object"] == "chat.completion" and answer["model"] == "tiny"
        assert answer["choices"][0]["message"] == {"role": "assistant", "content": direct}
        streamed = http.post("/v1/chat/completions", json={"messages": MESSAGES, "max_tokens": 12, "stream": True})
    assert streamed.headers["content-type"] == "text/event-stream"
    chunks = sse(streamed.text)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant"}
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text.strip() == direct.strip() and len(chunks) > 3  # several pieces, same greedy text


def test_completions_models_health_and_metrics(server, generator):
    with httpx.Client(base_url=server, timeout=60) as http:
        answer = http.post("/v1/completions", json={"prompt": "Rollouts are", "max_tokens": 8}).json()
        assert answer["choices"][0]["text"] == generator.complete("Rollouts are", max_tokens=8)
        streamed = sse(http.post("/v1/completions", json={"prompt": "Rollouts are", "max_tokens": 8, "stream": True}).text)
        assert "".join(c["choices"][0]["text"] for c in streamed).strip() == answer["choices"][0]["text"].strip()
        assert http.get("/v1/models").json()["data"][0]["id"] == "tiny"
        assert http.get("/health").status_code == 200
        metrics = http.get("/metrics").text
    assert 'mlops_requests_total{model="tiny",status="200",version="fallback"}' in metrics


@pytest.mark.parametrize(
    "route, body, message",
    [
        ("/v1/chat/completions", {"messages": []}, "messages must be a non-empty list of {role, content} objects with string content"),
        ("/v1/chat/completions", {"messages": MESSAGES, "model": "gpt-4"}, "model 'gpt-4' is not served here; this server serves 'tiny'"),
        ("/v1/chat/completions", {"messages": MESSAGES, "max_tokens": 0}, "max_tokens must be a number from 1 to 2048, got 0"),
        ("/v1/completions", {"prompt": 3}, "prompt must be a string"),
        ("/v1/completions", {"prompt": "x", "temperature": "hot"}, "temperature must be a number from 0.0 to 2.0, got 'hot'"),
    ],
)
def test_bad_requests_get_openai_style_400s(server, route, body, message):
    with httpx.Client(base_url=server, timeout=60) as http:
        response = http.post(route, json=body)
        assert response.status_code == 400
        assert response.json() == {"error": {"message": message, "type": "invalid_request_error"}}
        assert http.post(route, content=b"{").json()["error"]["message"].startswith("malformed JSON in the request body")
        assert http.get("/health").status_code == 200


def test_the_openai_client_against_the_fallback_server(server, generator):
    client = endpoint_client(server, "tiny")
    assert isinstance(client, OpenAIClient) and client.base == f"{server}/v1"
    assert client.chat(MESSAGES, max_tokens=10) == generator.chat(MESSAGES, max_tokens=10)
    assert "".join(client.chat(MESSAGES, max_tokens=10, stream=True)).strip() == generator.chat(MESSAGES, max_tokens=10).strip()
    assert client.complete("Drift is", max_tokens=6) == generator.complete("Drift is", max_tokens=6)


def test_the_ollama_client_speaks_ollamas_api():
    seen = []

    class Ollama(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append((self.path, body))
            self.send_response(200)
            self.end_headers()
            if body["stream"]:
                for word in ("Use ", "mlops ", "apply."):
                    self.wfile.write(json.dumps({"message": {"content": word}, "done": False}).encode() + b"\n")
                self.wfile.write(json.dumps({"message": {"content": ""}, "done": True}).encode() + b"\n")
            elif self.path == "/api/chat":
                self.wfile.write(json.dumps({"message": {"role": "assistant", "content": "Use mlops apply."}, "done": True}).encode())
            else:
                self.wfile.write(json.dumps({"response": "generated", "done": True}).encode())

        def log_message(self, *args):
            pass

    fake = HTTPServer(("127.0.0.1", 0), Ollama)
    threading.Thread(target=fake.serve_forever, daemon=True).start()
    try:
        client = endpoint_client(f"ollama://127.0.0.1:{fake.server_port}", "llama3")
        assert isinstance(client, OllamaClient)
        assert client.chat(MESSAGES, max_tokens=5) == "Use mlops apply."
        assert "".join(client.chat(MESSAGES, stream=True)) == "Use mlops apply."
        assert client.complete("hi") == "generated"
    finally:
        fake.shutdown()
    assert seen[0] == ("/api/chat", {"model": "llama3", "messages": MESSAGES, "stream": False,
                                     "options": {"num_predict": 5, "temperature": 0.0}})
    assert seen[2][0] == "/api/generate"


def test_a_model_that_is_not_here_is_one_clear_error(tmp_path):
    from framework.errors import MlopsError

    with pytest.raises(MlopsError) as caught:
        TransformersGenerator(tmp_path / "nothing")
    assert str(caught.value.problems[0]).startswith(f"model.cpu_fallback: cannot load {tmp_path / 'nothing'} with transformers offline: ")
