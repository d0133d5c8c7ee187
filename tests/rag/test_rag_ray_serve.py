"""The RAG service on its second host: `framework.runtime.rag.ray_host:app` on an embedded
Ray Serve, answering /query with sources from the persisted index and generating through
the CPU fallback LLM server (OpenAI routes) over HTTP, with the serving metrics."""

from __future__ import annotations

import shutil
import socket
import time

import httpx
import pytest

from framework import api
from tests.conftest import REPO, copy_project

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    from framework.runtime.rag.index import index_corpus

    root = copy_project(tmp_path_factory.mktemp("rag-ray"), ("recipes", "docs", "eval"))
    shutil.copy(REPO / "README.md", root / "README.md")
    recipe = api.load_recipe("support_assistant", project=root).recipe
    api.generate(["support_assistant"], project=root)
    report = index_corpus(recipe, root, root / ".mlops")
    assert report.chunks > 50
    return root, recipe


def test_query_through_ray_serve(indexed, monkeypatch):
    import ray
    from ray import serve

    from framework.runtime.rag.llm import TransformersGenerator, build_tiny_random
    from framework.runtime.rag.openai_app import OpenAIApp
    from framework.runtime.rag.ray_host import app as build
    from framework.runtime.serving.host import EmbeddedServer

    root, recipe = indexed
    for name, value in {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}.items():
        monkeypatch.setenv(name, value)
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    generator = TransformersGenerator(build_tiny_random(root / ".mlops" / "llm" / "tiny-random"), name="support-assistant")
    port = free_port()
    with EmbeddedServer(OpenAIApp(generator, served_name="support-assistant")) as llm:
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
        try:
            serve.start(http_options={"host": "127.0.0.1", "port": port})
            application = build({
                "recipe": str(root / "generated" / "support-assistant" / "dev" / "recipe.resolved.yaml"),
                "root": str(root),
                "llm_endpoint": f"http://{llm.url}",
            })
            serve.run(application, name="support-assistant-rag", route_prefix="/", blocking=False)
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as http:
                deadline = time.monotonic() + 180
                while True:
                    try:
                        if http.get("/health").status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    assert time.monotonic() < deadline, "the RAG deployment did not become healthy"
                    time.sleep(0.5)
                body = http.post("/query", json={"question": "Which exit code does mlops monitor use on drift?", "top_k": 3}).json()
                bad = http.post("/query", json={"question": "q", "top_k": 0})
                metrics = http.get("/metrics").text
            status = serve.status().applications["support-assistant-rag"]
            assert list(status.deployments) == ["RagServer"]
        finally:
            serve.shutdown()
            ray.shutdown()
    assert [s["source"] for s in body["sources"]][0] == "docs/monitoring.md" and len(body["sources"]) == 3
    assert body["model"] == "support-assistant" and isinstance(body["answer"], str) and body["latency_ms"] > 0
    assert bad.status_code == 400
    assert 'mlops_requests_total{model="support-assistant",status="200",version="rag"} 1.0' in metrics
