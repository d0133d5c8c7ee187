"""The real Triton Inference Server (2.51, as nvidia-pytriton ships it: `make tools`
installs it in .tools/triton-venv), serving a model repository of ours.

The `tritonserver` binary of that wheel carries only the python backend, so
`as_python_models` copies a filled repository with each model's platform swapped for the
python backend running its ONNX file (tests/serving/triton_python_model.py): every other
field of the generated config.pbtxt is kept. `command` gives the argv and environment that
start it on 127.0.0.1 with a backend directory `prepare_backends` lays out (the wheel keeps
one stub per Python version aside; the backend wants it beside libtriton_python.so).
Used by tests/serving/test_triton_server.py and bench/serve.py (server `triton`).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VENV = REPO / ".tools" / "triton-venv"
MODEL_PY = Path(__file__).with_name("triton_python_model.py")
SITE_ENV = "MLOPS_TRITON_SITE_PACKAGES"  # read by triton_python_model.py (the stub ignores PYTHONPATH)
ONNX_FILE = "model.onnx"


@dataclass(frozen=True)
class Install:
    site: Path  # the venv's site-packages: numpy, onnxruntime, pytriton
    python: str  # "3.11": the stub to use

    @property
    def dist(self) -> Path:
        return self.site / "pytriton" / "tritonserver"

    @property
    def binary(self) -> Path:
        return self.dist / "bin" / "tritonserver"

    @property
    def libs(self) -> Path:
        return self.site / "nvidia_pytriton.libs"

    @property
    def stub(self) -> Path:
        return self.dist / "python_backend_stubs" / self.python / "triton_python_backend_stub"


def install(venv: Path = VENV) -> Install | None:
    """The Triton of `venv`, or None when it is not installed."""
    for site in sorted(venv.glob("lib/python3.*/site-packages")):
        found = Install(site, site.parent.name.removeprefix("python"))
        if found.binary.is_file() and found.stub.is_file():
            return found
    return None


def as_python_models(source: Path, target: Path) -> Path:
    """A copy of the model repository `source` at `target` in which every model runs its
    ONNX file in Triton's python backend: config.pbtxt's `platform` becomes `backend:
    "python"` and `default_model_filename` "model.py" (the file that backend loads), and
    each version directory gets model.py beside its model.onnx. Returns `target`."""
    shutil.copytree(source, target)
    for config in target.glob("*/config.pbtxt"):
        text = config.read_text(encoding="utf-8")
        text, platforms = re.subn(r'(?m)^platform: "[^"]*"$', 'backend: "python"', text)
        text, files = re.subn(r'(?m)^default_model_filename: "[^"]*"$', 'default_model_filename: "model.py"', text)
        assert platforms == 1 and files == 1, f"{config}: no single platform / default_model_filename line"
        config.write_text(text, encoding="utf-8")
        for version in config.parent.iterdir():
            if version.is_dir() and (version / ONNX_FILE).is_file():
                shutil.copyfile(MODEL_PY, version / "model.py")
    return target


def prepare_backends(found: Install, folder: Path) -> Path:
    """`<folder>/python/`: the wheel's python backend with the stub of the venv's Python."""
    python = folder / "python"
    python.mkdir(parents=True, exist_ok=True)
    for name in ("libtriton_python.so", "triton_python_backend_utils.py"):
        (python / name).symlink_to(found.dist / "backends" / "python" / name)
    (python / "triton_python_backend_stub").symlink_to(found.stub)
    return folder


def command(found: Install, repository: Path, backends: Path, port: int) -> tuple[list[str], dict[str, str]]:
    """tritonserver's argv and environment: HTTP only, on 127.0.0.1:`port`; the config
    exactly as written (no auto-complete)."""
    argv = [
        str(found.binary), f"--model-repository={repository}", f"--backend-directory={backends}",
        "--http-address=127.0.0.1", f"--http-port={port}", "--allow-grpc=false", "--allow-metrics=false",
        "--disable-auto-complete-config", "--exit-timeout-secs=5", "--log-verbose=0",
    ]
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (str(found.libs), env.get("LD_LIBRARY_PATH", "")) if p)
    env[SITE_ENV] = str(found.site)
    return argv, env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


class TritonServer:
    """tritonserver serving `repository` (already in python-backend form) until stopped."""

    def __init__(self, found: Install, repository: Path, workdir: Path):
        self.port = free_port()
        self.log = workdir / "tritonserver.log"
        argv, env = command(found, repository, prepare_backends(found, workdir / "backends"), self.port)
        self._log_file = open(self.log, "wb")
        self.process = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=self._log_file,
                                        stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 45.0) -> "TritonServer":
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            if status(f"{self.base}/v2/health/ready") == 200:
                return self
            time.sleep(0.1)
        self.stop()
        tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])
        raise RuntimeError(f"tritonserver not ready in {timeout:.0f} s (exit {self.process.returncode}):\n{tail}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait(5)
        self._log_file.close()

    def __enter__(self) -> "TritonServer":
        return self.wait_ready()

    def __exit__(self, *exc) -> None:
        self.stop()
