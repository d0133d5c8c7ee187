"""Where answers are generated: a local transformers model (the CPU fallback of a vLLM
recipe), or any OpenAI-compatible server (vLLM, TGI's Messages API, ...) or Ollama
given by URL. All share `Generator.chat(messages, max_tokens, temperature, stream)`:
the text, or an iterator of text pieces when streaming.

Endpoints (`rag.llm_endpoint`): `http://host:8000` or `http://host:8000/v1` speaks the
OpenAI API (`POST /v1/chat/completions`); `ollama://host:11434` (or a URL whose path
ends in `/api`) speaks Ollama's (`POST /api/chat`).

Local models load with transformers from a directory (a Hugging Face model folder) or
a Hub id already in the local cache: nothing is downloaded (HF_HUB_OFFLINE). The name
`tiny-random` builds, once, a deterministic randomly initialised Llama with the
tokenizer the packaged all-MiniLM-L6-v2 carries: it exercises every code path on a
machine without weights, and its words are noise.
"""

from __future__ import annotations

import json
import os
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator, Protocol

from framework.errors import MlopsError, Problem

TINY_RANDOM = "tiny-random"
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


class Generator(Protocol):
    name: str

    def chat(self, messages: list[dict], max_tokens: int = 256, temperature: float = 0.0,
             stream: bool = False) -> str | Iterator[str]: ...

    def complete(self, prompt: str, max_tokens: int = 256, temperature: float = 0.0,
                 stream: bool = False) -> str | Iterator[str]: ...


# --- local transformers ---------------------------------------------------------------
def _offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def build_tiny_random(folder: Path, seed: int = 0) -> Path:
    """A 2-layer Llama (hidden 64) with the packaged MiniLM tokenizer, saved to folder."""
    _offline()
    folder = Path(folder)
    if (folder / "config.json").is_file():
        return folder
    import tempfile
    import zipfile

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from framework.runtime.rag.embedding import shipped_zip

    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent) as tmp:
        with zipfile.ZipFile(shipped_zip()) as bundle:
            bundle.extract("tokenizer.json", tmp)
        tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(Path(tmp) / "tokenizer.json"), unk_token="[UNK]",
                                            pad_token="[PAD]", bos_token="[CLS]", eos_token="[SEP]")
        tokenizer.chat_template = CHAT_TEMPLATE
        config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                             num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=2048,
                             bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                             pad_token_id=tokenizer.pad_token_id)
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
        staged = Path(tmp) / "model"
        model.save_pretrained(staged)
        tokenizer.save_pretrained(staged)
        try:
            staged.rename(folder)
        except OSError:  # another process built it first
            if not (folder / "config.json").is_file():
                raise
    return folder


class TransformersGenerator:
    """Greedy or sampled generation on CPU; one generation at a time (a lock), streaming
    through transformers' TextIteratorStreamer."""

    def __init__(self, model: str | Path, *, name: str | None = None, threads: int | None = None):
        _offline()
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if threads:
            torch.set_num_threads(threads)
        self.name = name or str(model)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(model))
            self.model = AutoModelForCausalLM.from_pretrained(str(model), dtype=torch.float32)
        except (OSError, ValueError) as exc:
            message = (f"cannot load {model} with transformers offline: {str(exc).splitlines()[0]}; "
                       "give a local model folder, or a Hub id already in the local cache")
            raise MlopsError([Problem(None, "model.cpu_fallback", message)]) from None
        self.model.eval()
        if self.tokenizer.chat_template is None:
            self.tokenizer.chat_template = CHAT_TEMPLATE
        self._lock = threading.Lock()

    def _prompt(self, messages: list[dict]) -> str:
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def chat(self, messages, max_tokens=256, temperature=0.0, stream=False):
        return self.complete(self._prompt(messages), max_tokens, temperature, stream)

    def complete(self, prompt, max_tokens=256, temperature=0.0, stream=False):
        import torch

        inputs = self.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
        limit = getattr(self.model.config, "max_position_embeddings", 2048) - max_tokens
        if inputs["input_ids"].shape[1] > limit > 0:  # keep the end: the question is there
            inputs = {k: v[:, -limit:] for k, v in inputs.items()}
        options = dict(max_new_tokens=max_tokens, do_sample=temperature > 0, pad_token_id=self.tokenizer.pad_token_id
                       or self.tokenizer.eos_token_id)
        if temperature > 0:
            options["temperature"] = temperature
        if not stream:
            with self._lock, torch.no_grad():
                output = self.model.generate(**inputs, **options)
            return self.tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
        from transformers import TextIteratorStreamer

        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)

        def run() -> None:
            with self._lock, torch.no_grad():
                self.model.generate(**inputs, **options, streamer=streamer)

        threading.Thread(target=run, daemon=True, name="generate").start()
        return (piece for piece in streamer if piece)


# --- remote endpoints -----------------------------------------------------------------
def _post(url: str, body: dict, timeout: float, stream: bool):
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json",
                                              **({"Authorization": f"Bearer {os.environ['OPENAI_API_KEY']}"}
                                                 if os.environ.get("OPENAI_API_KEY") else {})})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        detail = error.read().decode("utf-8", "replace")[:300]
        raise MlopsError([Problem(None, "rag.llm_endpoint", f"{url} answered {error.code}: {detail}")]) from None
    except OSError as error:
        raise MlopsError([Problem(None, "rag.llm_endpoint", f"cannot reach {url}: {error}")]) from None
    if stream:
        return response
    with response:
        return json.loads(response.read())


class OpenAIClient:
    """Any OpenAI-compatible server (vLLM, TGI, llama.cpp, ...)."""

    def __init__(self, url: str, model: str, timeout: float = 120.0):
        base = url.rstrip("/")
        self.base = base if base.endswith("/v1") else f"{base}/v1"
        self.name, self.timeout = model, timeout

    def chat(self, messages, max_tokens=256, temperature=0.0, stream=False):
        body = {"model": self.name, "messages": messages, "max_tokens": max_tokens, "temperature": temperature, "stream": stream}
        answer = _post(f"{self.base}/chat/completions", body, self.timeout, stream)
        if not stream:
            return answer["choices"][0]["message"]["content"]
        return self._events(answer, lambda choice: (choice.get("delta") or {}).get("content"))

    def complete(self, prompt, max_tokens=256, temperature=0.0, stream=False):
        body = {"model": self.name, "prompt": prompt, "max_tokens": max_tokens, "temperature": temperature, "stream": stream}
        answer = _post(f"{self.base}/completions", body, self.timeout, stream)
        if not stream:
            return answer["choices"][0]["text"]
        return self._events(answer, lambda choice: choice.get("text"))

    @staticmethod
    def _events(response, pick) -> Iterator[str]:
        with response:
            for raw in response:
                line = raw.decode("utf-8").strip()
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    return
                for choice in json.loads(data).get("choices", []):
                    piece = pick(choice)
                    if piece:
                        yield piece


class OllamaClient:
    """Ollama's native API (`/api/chat`, `/api/generate`; newline-delimited JSON streams)."""

    def __init__(self, url: str, model: str, timeout: float = 120.0):
        base = url.rstrip("/").replace("ollama://", "http://", 1)
        self.base = base if base.endswith("/api") else f"{base}/api"
        self.name, self.timeout = model, timeout

    def chat(self, messages, max_tokens=256, temperature=0.0, stream=False):
        body = {"model": self.name, "messages": messages, "stream": stream,
                "options": {"num_predict": max_tokens, "temperature": temperature}}
        answer = _post(f"{self.base}/chat", body, self.timeout, stream)
        if not stream:
            return answer["message"]["content"]
        return self._lines(answer, lambda event: (event.get("message") or {}).get("content"))

    def complete(self, prompt, max_tokens=256, temperature=0.0, stream=False):
        body = {"model": self.name, "prompt": prompt, "stream": stream,
                "options": {"num_predict": max_tokens, "temperature": temperature}}
        answer = _post(f"{self.base}/generate", body, self.timeout, stream)
        if not stream:
            return answer["response"]
        return self._lines(answer, lambda event: event.get("response"))

    @staticmethod
    def _lines(response, pick) -> Iterator[str]:
        with response:
            for raw in response:
                if raw.strip():
                    event = json.loads(raw)
                    piece = pick(event)
                    if piece:
                        yield piece
                    if event.get("done"):
                        return


def endpoint_client(url: str, model: str):
    """The client for a `rag.llm_endpoint` URL (see the module docstring)."""
    if url.startswith("ollama://") or url.rstrip("/").endswith("/api"):
        return OllamaClient(url, model)
    if not url.startswith(("http://", "https://")):
        raise MlopsError([Problem(None, "rag.llm_endpoint", f"{url!r} is not an http(s):// or ollama:// URL")])
    return OpenAIClient(url, model)


__all__ = ["Generator", "TransformersGenerator", "OpenAIClient", "OllamaClient", "endpoint_client",
           "build_tiny_random", "TINY_RANDOM"]
