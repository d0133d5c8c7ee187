"""An LLM recipe on this machine: `mlops apply --target local` and `mlops serve`.

apply: index the corpus (only changed documents are embedded again) -> evaluate the
retrieval on the labelled set and check `evaluation.gates` (a failure exits 1) -> start
the generation server -> start the RAG service -> ask it the first labelled question
-> print where everything is -> stop both.

The generation server, in order of preference:
* `rag.llm_endpoint`: an OpenAI-compatible or Ollama server that already runs;
* backend vllm (or sglang) on a machine with a CUDA GPU and vLLM installed (`pip install
  '.[llm]'`; SGLang: `'.[sglang]'`): the real OpenAI-compatible server, started with the
  very arguments the generated Deployment passes (framework/contracts/llm.py), on a free
  local port;
* otherwise `model.cpu_fallback`, when the recipe allows it: that model (a local
  folder, a Hub id already in the local cache, or `tiny-random`) under transformers
  behind the same OpenAI routes (openai_app.py);
* else one error line saying what is missing.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from framework.contracts.llm import served_model_name
from framework.errors import MlopsError, Problem

VLLM_START_SECONDS = 1800  # weights download, load, profiling, CUDA graphs (vLLM or SGLang)


@dataclass
class Llm:
    url: str
    served_name: str
    how: str  # one line for the terminal


@dataclass
class RagOutcome:
    index: Any = None
    evaluation: Any = None
    gates: Any = None
    llm: str = ""
    url: str = ""
    sample: dict = field(default_factory=dict)


def gpu_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:  # pragma: no cover - torch is a dependency
        return False


def vllm_installed() -> bool:
    from importlib.util import find_spec

    return find_spec("vllm") is not None


def sglang_installed() -> bool:
    from importlib.util import find_spec

    return find_spec("sglang") is not None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, seconds: float, process: subprocess.Popen | None = None, server: str = "vLLM") -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise MlopsError([Problem(None, "serving", f"{server} exited with code {process.returncode} before it was healthy (its log is above)")])
        try:
            urllib.request.urlopen(f"{url}/health", timeout=2)
            return
        except OSError:
            time.sleep(0.5)
    raise MlopsError([Problem(None, "serving", f"{url}/health did not answer within {seconds:.0f} s")])


def vllm_command(recipe, port: int) -> list[str]:
    """`vllm serve` (as the image runs it) with the generated Deployment's args."""
    from framework.contracts.llm import VLLM_MODULE, vllm_args

    command = vllm_args(recipe)
    command[command.index("--port") + 1] = str(port)
    return [sys.executable, "-m", VLLM_MODULE, "serve", *command, "--host", "127.0.0.1"]


def sglang_command(recipe, port: int) -> list[str]:
    """`python -m sglang.launch_server` with the generated Deployment's args, on this
    machine's loopback and `port`."""
    from framework.contracts.llm import SGLANG_MODULE, sglang_args

    command = sglang_args(recipe)
    command[command.index("--port") + 1] = str(port)
    command[command.index("--host") + 1] = "127.0.0.1"
    return [sys.executable, "-m", SGLANG_MODULE, *command]


# backend -> (server name, installed?, command, the extra that installs it); looked up
# when called, so a test may replace any of them.
LOCAL_SERVERS = {
    "vllm": ("vLLM", lambda: vllm_installed(), lambda r, p: vllm_command(r, p), "llm"),
    "sglang": ("SGLang", lambda: sglang_installed(), lambda r, p: sglang_command(r, p), "sglang"),
}


@contextmanager
def generation_server(recipe, state_dir: Path, console=None) -> Iterator[Llm]:
    """The generation endpoint for the life of the block (see the module docstring)."""
    say = (lambda line: console.print(line, markup=False, highlight=False)) if console is not None else (lambda line: None)
    served = served_model_name(recipe)
    if recipe.rag is not None and recipe.rag.llm_endpoint:
        yield Llm(recipe.rag.llm_endpoint, served, f"generation: {recipe.rag.llm_endpoint} (rag.llm_endpoint)")
        return
    backend = recipe.serving.backend
    name, installed, build_command, extra = LOCAL_SERVERS.get(backend, (None, None, None, None))
    if name is not None and gpu_available() and installed():
        port = _free_port()
        command = build_command(recipe, port)
        say(f"generation: {name} on this GPU: {' '.join(command[2:])}")
        process = subprocess.Popen(command, start_new_session=True)
        try:
            _wait_healthy(f"http://127.0.0.1:{port}", VLLM_START_SECONDS, process, name)
            yield Llm(f"http://127.0.0.1:{port}", served, f"generation: {name} at http://127.0.0.1:{port}")
        finally:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
        return
    fallback = recipe.model.cpu_fallback
    if name is None:
        missing = f"apply --target local starts vLLM or SGLang only; {backend} runs on clusters"
    else:
        missing = "no CUDA GPU on this machine" if not gpu_available() else f"{name} is not installed (pip install '.[{extra}]')"
    if fallback is None:
        message = (f"serving.backend {backend} cannot run here: {missing}; set model.cpu_fallback (a local model "
                   "folder, a Hub id in the local cache, or tiny-random) to serve on CPU with transformers, "
                   "or rag.llm_endpoint to use a running server")
        raise MlopsError([Problem(None, "model.cpu_fallback", message)])
    from framework.runtime.rag.llm import TINY_RANDOM, TransformersGenerator, build_tiny_random
    from framework.runtime.rag.openai_app import OpenAIApp
    from framework.runtime.serving.host import EmbeddedServer

    model = fallback
    if model == TINY_RANDOM:
        model = str(build_tiny_random(Path(state_dir) / "llm" / TINY_RANDOM))
        note = "a tiny randomly initialised model: retrieval and sources are real, its words are noise"
    else:
        note = f"{model} on CPU"
    say(f"{backend} cannot run here ({missing}): CPU fallback with transformers, {note}")
    generator = TransformersGenerator(model, name=served, threads=max(1, (os.cpu_count() or 2) - 1))
    with EmbeddedServer(OpenAIApp(generator, served_name=served)) as server:
        yield Llm(f"http://{server.url}", served, f"generation: CPU fallback at http://{server.url}/v1 ({note})")


def apply_local(recipe, root: Path, state_dir: Path, console=None) -> RagOutcome:
    from framework.runtime.rag.evaluate import evaluate_retrieval, retrieval_gates
    from framework.runtime.rag.index import index_corpus
    from framework.runtime.rag.service import RagApp
    from framework.runtime.training.gates import raise_for_failures
    from framework.runtime.serving.host import EmbeddedServer

    outcome = RagOutcome()
    outcome.index = index_corpus(recipe, root, state_dir, console=console)
    outcome.evaluation = evaluate_retrieval(recipe, root, state_dir, index=False)
    outcome.gates = retrieval_gates(recipe, outcome.evaluation)
    if console is not None:
        console.print(outcome.gates.rich_table())
    raise_for_failures(outcome.gates)  # a failed gate: nothing is served
    with generation_server(recipe, state_dir, console) as llm:
        outcome.llm = llm.how
        from framework.runtime.rag.service import build

        app: RagApp = build(recipe, root, llm.url, llm.served_name, state_dir=state_dir)
        with EmbeddedServer(app) as server:
            outcome.url = f"http://{server.url}"
            question = outcome.evaluation.rows[0]["question"] if outcome.evaluation.rows else "What is this project?"
            outcome.sample = app.answer(question, recipe.rag.retriever.k) | {"question": question}
    return outcome


def summary(recipe, outcome: RagOutcome) -> str:
    report, evaluation = outcome.index, outcome.evaluation
    sample = outcome.sample
    lines = [
        f"{recipe.name} ({recipe.environment}): indexed {report.documents} documents, {report.chunks} chunks "
        f"({report.embedded} chunks embedded now; {report.unchanged} documents unchanged) in {recipe.rag.vector_store.path}",
        f"  retrieval: recall@{evaluation.k} {evaluation.recall_at_k:.3f}, MRR {evaluation.mrr:.3f} "
        f"on {evaluation.questions} labelled questions, gates passed",
        f"  {outcome.llm}",
        f"  asked: {sample.get('question')}",
        f"  answer: {str(sample.get('answer', ''))[:200]}",
        f"  sources: {', '.join(s['source'] for s in sample.get('sources', []))} ({sample.get('latency_ms')} ms)",
        f"serve it: mlops serve {recipe.name}, then POST http://127.0.0.1:{recipe.serving.port}/query "
        '{"question": "...", "top_k": 4}',
    ]
    return "\n".join(lines)


def serve_forever(recipe, root: Path, state_dir: Path, host: str, port: int, console=None, on_ready=None) -> None:
    """`mlops serve` for an LLM recipe: the generation server and the RAG service on
    `port` in the foreground until Ctrl-C."""
    from framework.runtime.rag.retrieve import Retriever
    from framework.runtime.rag.service import build
    from framework.runtime.serving.host import serve_forever as serve

    retriever = Retriever(recipe, root, state_dir)  # no index: say so before starting any model
    with generation_server(recipe, state_dir, console) as llm:
        app = build(recipe, root, llm.url, llm.served_name, state_dir=state_dir, retriever=retriever)
        serve(app, host, port, lambda url: on_ready(url, llm.how) if on_ready else None)


def clean_index(recipe, root: Path) -> None:
    shutil.rmtree(Path(root) / recipe.rag.vector_store.path, ignore_errors=True)


__all__ = ["apply_local", "summary", "serve_forever", "generation_server", "sglang_command", "vllm_command", "RagOutcome"]
