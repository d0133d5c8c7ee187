"""`mlops apply support_assistant` (the local target, no GPU here): indexes the project's
docs, evaluates retrieval against the gates, starts the CPU fallback LLM behind the
OpenAI routes and the RAG service, asks it a question; `mlops eval`; `mlops serve`."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO, copy_project, run_cli

pytestmark = pytest.mark.slow
MLOPS = str(Path(sys.executable).with_name("mlops"))


@contextlib.contextmanager
def rag_project(base: Path):
    """A copy of the project's recipes, docs and eval set, nothing indexed yet; the
    working directory while open."""
    root = copy_project(base, ("recipes", "docs", "eval"))
    shutil.copy(REPO / "README.md", root / "README.md")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
            mp.delenv(name, raising=False)
        yield root


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    with rag_project(tmp_path_factory.mktemp("rag")) as root:
        yield root


@pytest.fixture(scope="module")
def indexed(project):
    """`project` with its documents indexed, as apply or eval leave it."""
    from framework import api
    from framework.runtime.rag.index import index_corpus

    index_corpus(api.load_recipe("support_assistant", project=project).recipe, project)
    return project


@pytest.fixture
def unindexed(tmp_path):
    """A project of its own: apply's first run must find nothing indexed."""
    with rag_project(tmp_path) as root:
        yield root


def test_dry_run_lists_the_rag_steps(project):
    result = run_cli("apply", "support_assistant", "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert [line.split(".", 1)[1].split(":")[0].strip() for line in result.stdout.splitlines()[1:]] == [
        "generate", "index", "evaluate", "generation", "serve"]


def test_apply_indexes_evaluates_serves_and_answers_with_sources(unindexed):
    result = run_cli("apply", "support_assistant")
    assert result.exit_code == 0, result.stdout + result.stderr[-3000:]
    lines = result.stdout.splitlines()
    indexed = re.match(r"support-assistant \(dev\): indexed (\d+) documents, (\d+) chunks \((\d+) chunks embedded now; 0 documents unchanged\)", lines[0])
    assert indexed and int(indexed.group(1)) >= 5 and indexed.group(2) == indexed.group(3)
    recall = float(re.search(r"recall@5 ([0-9.]+)", lines[1]).group(1))
    assert recall >= 0.8 and lines[1].endswith("gates passed")
    assert "CPU fallback" in lines[2] and "its words are noise" in lines[2]
    sources = lines[5].removeprefix("  sources: ").split(" (")[0].split(", ")
    assert sources and all(s == "README.md" or s.startswith("docs/") for s in sources)
    assert lines[-1].startswith("serve it: mlops serve support-assistant, then POST http://127.0.0.1:8000/query")
    assert "no CUDA GPU on this machine" in result.stderr

    again = run_cli("apply", "support_assistant")  # nothing changed: nothing embedded again
    assert again.exit_code == 0, again.stderr[-3000:]
    assert re.match(r"support-assistant \(dev\): indexed (\d+) documents, \d+ chunks \(0 chunks embedded now; \1 documents unchanged\)",
                    again.stdout.splitlines()[0])


def test_eval_passes_and_fails_by_the_gates(project):
    result = run_cli("eval", "support_assistant")
    assert result.exit_code == 0, result.stderr[-2000:]
    assert re.match(r"support_assistant: recall@5 [0-9.]+, MRR [0-9.]+ on \d+ questions: gates passed", result.stdout)
    gates = project / "recipes" / "evaluation" / "rag_retrieval.yaml"
    original = gates.read_text()
    gates.write_text(original.replace("min_mrr: 0.5", "min_mrr: 0.99"))
    try:
        failed = run_cli("eval", "support_assistant")
    finally:
        gates.write_text(original)
    assert failed.exit_code == 1
    assert "gates FAILED" in failed.stdout and "min_mrr" in failed.stderr


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_answers_queries_until_ctrl_c(indexed):
    port = free_port()
    process = subprocess.Popen([MLOPS, "serve", "support_assistant", "--port", str(port)], cwd=indexed,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True)
    try:
        first = process.stdout.readline()
        assert first.startswith(f"serving support_assistant at http://127.0.0.1:{port}/query"), first
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            deadline = time.monotonic() + 30
            while http.get("/health").status_code != 200:
                assert time.monotonic() < deadline
                time.sleep(0.2)
            answer = http.post("/query", json={"question": "Which exit code does mlops monitor use on drift?", "top_k": 3}).json()
            assert http.post("/query", json={"question": ""}).status_code == 400
            metrics = http.get("/metrics").text
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err[-2000:]
    assert len(answer["sources"]) == 3 and answer["sources"][0]["source"] == "docs/monitoring.md"
    assert isinstance(answer["answer"], str) and answer["latency_ms"] > 0
    assert 'mlops_requests_total{model="support-assistant",status="200",version="rag"} 1.0' in metrics
    assert "Traceback" not in err
