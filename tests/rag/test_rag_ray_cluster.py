"""A RAG recipe on an existing Ray cluster: `apply --target ray --address URL
--head-shares-disk` runs the index job there, then deploys the RAG service through
Serve's REST API; it answers /query with sources, generating through rag.llm_endpoint
(the CPU fallback LLM server on 127.0.0.1, standing in for the team's)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO, copy_project
from tests.ray_head import free_port, ray_head

pytestmark = pytest.mark.slow
MLOPS = str(Path(sys.executable).with_name("mlops"))


@pytest.fixture
def rag_project(tmp_path: Path) -> Path:
    root = copy_project(tmp_path, ("recipes", "docs", "eval"))
    shutil.copy(REPO / "README.md", root / "README.md")
    shutil.copy(REPO / ".gitignore", root / ".gitignore")
    return root


def _apply(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        env.pop(name, None)
    return subprocess.run([MLOPS, "apply", "support_assistant", "--target", "ray", *args], cwd=root, env=env,
                          capture_output=True, text=True, timeout=900)


def test_the_index_job_and_the_rag_service_run_on_the_cluster(rag_project: Path) -> None:
    from framework.runtime.rag.llm import TransformersGenerator, build_tiny_random
    from framework.runtime.rag.openai_app import OpenAIApp
    from framework.runtime.serving.host import EmbeddedServer

    generator = TransformersGenerator(build_tiny_random(rag_project / ".mlops" / "llm" / "tiny-random"),
                                      name="support-assistant")
    port = free_port()
    with EmbeddedServer(OpenAIApp(generator, served_name="support-assistant")) as llm:
        recipe = rag_project / "recipes" / "support_assistant.yaml"
        recipe.write_text(recipe.read_text() + f"rag:\n  llm_endpoint: http://{llm.url}\nserving:\n  port: {port}\n")
        with ray_head(num_cpus=3) as address:
            done = _apply(rag_project, "--address", address, "--head-shares-disk")
            output = done.stdout + done.stderr
            assert done.returncode == 0, output[-4000:]
            assert "support-assistant (dev): Ray job SUCCEEDED" in output
            assert f"RAG served on the Ray cluster: POST http://127.0.0.1:{port}/query" in output
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as http:
                body = http.post("/query", json={"question": "Which exit code does mlops monitor use on drift?",
                                                 "top_k": 3}).json()
    assert len(body["sources"]) == 3 and body["answer"]
    assert (rag_project / ".mlops" / "vectors").is_dir()  # the job wrote the index where the replicas read it


@pytest.mark.parametrize(
    ("extra", "line"),
    [
        ((), "rag.vector_store.path: the index job and the RAG replicas on the Ray cluster at http://127.0.0.1:1 meet "
             "only on a shared disk: pass --head-shares-disk"),
        (("--head-shares-disk",), "rag.llm_endpoint: the RAG service on the Ray cluster at http://127.0.0.1:1 "
                                  "generates through an OpenAI-compatible server it reaches: set rag.llm_endpoint"),
    ],
)
def test_what_the_cluster_cannot_do_is_refused(rag_project: Path, extra: tuple[str, ...], line: str) -> None:
    done = _apply(rag_project, "--address", "http://127.0.0.1:1", *extra)
    assert done.returncode == 1
    assert line in done.stderr and "Traceback" not in done.stderr
