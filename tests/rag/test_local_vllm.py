"""The GPU path of a local LLM apply: vLLM's OpenAI server started with the generated
Deployment's arguments, waited for, used, and stopped. No GPU here: a stand-in `vllm`
package (its CLI module's `serve` answers /health and /v1/chat/completions) takes vLLM's
place, and `gpu_available` is made true; everything else is the real code path."""

from __future__ import annotations

import sys
import textwrap

import pytest

from framework import api
from framework.runtime.rag import local
from framework.runtime.rag.llm import endpoint_client
from framework.targets.kubernetes.vllm import args
from tests.conftest import REPO
from tests.rag.stand_in_llm import stand_in

STAND_IN = stand_in("vllm", (
    "--model", "--tensor-parallel-size", "--gpu-memory-utilization", "--max-model-len", "--served-model-name", "--port",
    "--dtype", "--max-num-seqs", "--host", "--quantization", "--revision"), ("--trust-remote-code",), command="serve")


@pytest.fixture
def stand_in_vllm(tmp_path, monkeypatch):
    package = tmp_path / "site" / "vllm"
    for sub in ("", "entrypoints", "entrypoints/cli"):
        (package / sub).mkdir(parents=True, exist_ok=True)
        (package / sub / "__init__.py").write_text("")
    (package / "entrypoints" / "cli" / "main.py").write_text(textwrap.dedent(STAND_IN))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "site"))
    monkeypatch.setattr(local, "gpu_available", lambda: True)
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    return package / "entrypoints" / "cli" / "main.py"


def test_the_command_is_the_deployments_arguments_on_a_local_port():
    recipe = api.load_recipe("support_assistant", project=REPO).recipe
    command = local.vllm_command(recipe, 18123)
    assert command[:4] == [sys.executable, "-m", "vllm.entrypoints.cli.main", "serve"]
    deployment = args(recipe)
    assert command[4:-2] == [("18123" if previous == "--port" else value) for previous, value in zip([None, *deployment], deployment)]
    assert command[-2:] == ["--host", "127.0.0.1"]


def test_vllm_is_started_used_and_stopped(stand_in_vllm, tmp_path):
    import json

    recipe = api.load_recipe("support_assistant", project=REPO).recipe
    assert local.vllm_installed()
    with local.generation_server(recipe, tmp_path / ".mlops") as llm:
        assert llm.how.startswith("generation: vLLM at http://127.0.0.1:")
        answer = endpoint_client(llm.url, llm.served_name).chat([{"role": "user", "content": "hi"}])
    assert answer == "vllm says support-assistant"
    passed = json.loads(stand_in_vllm.with_name("main.py.args").read_text())
    assert passed[passed.index("--model") + 1] == recipe.model.source
    import urllib.request

    with pytest.raises(OSError):  # stopped with the block
        urllib.request.urlopen(f"{llm.url}/health", timeout=2)


def test_a_vllm_that_dies_at_start_is_one_error(stand_in_vllm, tmp_path):
    from framework.errors import MlopsError

    stand_in_vllm.write_text("import sys\nsys.exit(3)\n")
    recipe = api.load_recipe("support_assistant", project=REPO).recipe
    with pytest.raises(MlopsError) as caught:
        with local.generation_server(recipe, tmp_path / ".mlops"):
            pass
    assert str(caught.value.problems[0]) == "serving: vLLM exited with code 3 before it was healthy (its log is above)"
