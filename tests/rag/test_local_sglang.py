"""The GPU path of a local LLM apply with serving.backend sglang: SGLang's server
(`python -m sglang.launch_server`) started with the generated Deployment's arguments on
this machine's loopback, waited for, used, and stopped. No GPU here: a stand-in `sglang`
package (its launch_server module parses SGLang's flags, records its argv and answers
/health and the OpenAI routes) takes SGLang's place, and `gpu_available` is made true;
everything else is the real code path. Without a GPU or SGLang: the CPU fallback."""

from __future__ import annotations

import json
import sys
import textwrap
import urllib.request

import pytest

from framework import api
from framework.errors import MlopsError
from framework.runtime.rag import local
from framework.runtime.rag.llm import endpoint_client
from framework.targets.kubernetes.sglang import args
from tests.conftest import REPO
from tests.rag.stand_in_llm import stand_in

STAND_IN = stand_in("sglang", (
    "--model-path", "--tp-size", "--mem-fraction-static", "--context-length", "--served-model-name", "--host", "--port",
    "--dtype", "--max-running-requests", "--quantization", "--load-format", "--revision"),
    ("--enable-metrics", "--trust-remote-code"))


def _recipe():
    return api.load_recipe("support_assistant", overrides=["serving=sglang"], project=REPO).recipe


@pytest.fixture
def stand_in_sglang(tmp_path, monkeypatch):
    package = tmp_path / "site" / "sglang"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "launch_server.py").write_text(textwrap.dedent(STAND_IN))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "site"))
    monkeypatch.setattr(local, "gpu_available", lambda: True)
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    return package / "launch_server.py"


def test_the_command_is_the_deployments_arguments_on_loopback():
    recipe = _recipe()
    command = local.sglang_command(recipe, 18124)
    assert command[:3] == [sys.executable, "-m", "sglang.launch_server"]
    local_values = {"--port": "18124", "--host": "127.0.0.1"}
    deployment = args(recipe)
    assert command[3:] == [local_values.get(previous, value) for previous, value in zip([None, *deployment], deployment)]


def test_sglang_is_started_used_and_stopped(stand_in_sglang, tmp_path):
    recipe = _recipe()
    assert local.sglang_installed()
    with local.generation_server(recipe, tmp_path / ".mlops") as llm:
        assert llm.how.startswith("generation: SGLang at http://127.0.0.1:")
        answer = endpoint_client(llm.url, llm.served_name).chat([{"role": "user", "content": "hi"}])
    assert answer == "sglang says support-assistant"
    passed = json.loads(stand_in_sglang.with_name("launch_server.py.args").read_text())
    assert passed == local.sglang_command(recipe, int(llm.url.rsplit(":", 1)[1]))[3:]
    assert passed[passed.index("--model-path") + 1] == recipe.model.source and "--enable-metrics" in passed
    with pytest.raises(OSError):  # stopped with the block
        urllib.request.urlopen(f"{llm.url}/health", timeout=2)


def test_an_sglang_that_dies_at_start_is_one_error(stand_in_sglang, tmp_path):
    stand_in_sglang.write_text("import sys\nsys.exit(3)\n")
    with pytest.raises(MlopsError) as caught:
        with local.generation_server(_recipe(), tmp_path / ".mlops"):
            pass
    assert str(caught.value.problems[0]) == "serving: SGLang exited with code 3 before it was healthy (its log is above)"


def test_without_a_gpu_the_cpu_fallback_serves(monkeypatch, tmp_path):
    """No CUDA GPU: the recipe's model.cpu_fallback (tiny-random) behind the same OpenAI
    routes, and the line says why SGLang did not start."""
    from rich.console import Console

    monkeypatch.setattr(local, "gpu_available", lambda: False)
    console = Console(record=True, width=400)
    with local.generation_server(_recipe(), tmp_path / ".mlops", console) as llm:
        assert llm.how.startswith("generation: CPU fallback at http://")
        answer = endpoint_client(llm.url, llm.served_name).chat([{"role": "user", "content": "hi"}], max_tokens=4)
    assert isinstance(answer, str)
    assert "sglang cannot run here (no CUDA GPU on this machine): CPU fallback with transformers" in console.export_text()
