"""Serving throughput: the embedded host (`mlops serve`: the serving app under uvicorn)
against a naive FastAPI server running ONNX Runtime per request, both measured in this
run on the same tiny MLP (churn's signature: 13 features in, 2 probabilities out).

Each server runs in its own process; load comes from `wrk` (apt-get install wrk):
batch-1 KServe v2 JSON requests at 64 connections for DURATION seconds, then at 1
connection (latency of a lone request). Prints requests/s, p50/p99 and non-2xx counts.
Run: `python bench/serve.py [--duration 10] [--connections 64]`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

REQUEST = {"inputs": [{"name": "features", "shape": [1, 13], "datatype": "FP32",
                       "data": [1.0, 24.0, 70.5, 1690.2, 2.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0]}]}

BASELINE = '''
import numpy as np, onnxruntime as ort, uvicorn
from fastapi import FastAPI
from pydantic import BaseModel
session = ort.InferenceSession(MODEL, providers=["CPUExecutionProvider"])
app = FastAPI()
class Tensor(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    data: list[float]
class Request(BaseModel):
    inputs: list[Tensor]
@app.get("/v2/health/ready")
def ready():
    return {}
@app.post("/v2/models/churn/infer")
async def infer(request: Request):
    t = request.inputs[0]
    x = np.asarray(t.data, dtype=np.float32).reshape(t.shape)
    y = session.run(None, {t.name: x})[0]
    return {"model_name": "churn", "outputs": [{"name": "probabilities", "datatype": "FP32",
            "shape": list(y.shape), "data": y.ravel().tolist()}]}
uvicorn.run(app, host="127.0.0.1", port=PORT, log_level="warning", access_log=False)
'''

EMBEDDED = '''
from framework.runtime.serve import build_app, serve_forever
app = build_app("generated/churn/dev/recipe.resolved.yaml", REPO, STATE)
serve_forever(app, "127.0.0.1", PORT)
'''

SERVERS = {
    "embedded host (serving app, uvicorn)": EMBEDDED,
    "baseline: naive FastAPI + ONNX Runtime": BASELINE,
}

LUA = '''
wrk.method = "POST"
wrk.body = [[BODY]]
wrk.headers["Content-Type"] = "application/json"
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %d %.1f %.1f\\n", summary.requests, summary.duration,
    summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
'''


def make_repository(folder: Path) -> Path:
    """churn's config.pbtxt and one version of a tiny MLP (32-16 hidden units)."""
    import torch

    from framework import api
    from framework.runtime.export import export_onnx
    from framework.runtime.model import TabularNet
    from framework.signature import model_signature
    from framework.targets.triton import render

    recipe = api.load_recipe("churn", project=ROOT).recipe
    width = model_signature(recipe).input.width
    torch.manual_seed(0)
    export_onnx(TabularNet(width=width, outputs=2, task="classification", hidden_sizes=[32, 16]), recipe,
                folder / "churn" / "1" / "model.onnx")
    (artifact,) = render(recipe)
    (folder / "churn" / "config.pbtxt").write_text(artifact.text)
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(code: str, port: int, repo: Path, state: Path) -> subprocess.Popen:
    source = code.replace("PORT", str(port)).replace("REPO", repr(str(repo))).replace("STATE", repr(str(state)))
    source = source.replace("MODEL", repr(str(repo / "churn" / "1" / "model.onnx")))
    process = subprocess.Popen([sys.executable, "-c", source], cwd=ROOT, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=1)
            return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("a server did not start in 60 s")


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wrk(port: int, connections: int, seconds: int, script: Path) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(script), f"http://127.0.0.1:{port}/v2/models/churn/infer"],
        capture_output=True, text=True, check=True,
    ).stdout
    line = next(l for l in out.splitlines() if l.startswith("RESULT"))
    requests, duration_us, status_errors, socket_errors, p50, p99 = (float(v) for v in line.split()[1:])
    return {"rps": requests / (duration_us / 1e6), "p50_ms": p50 / 1e3, "p99_ms": p99 / 1e3,
            "non2xx": status_errors, "socket_errors": socket_errors, "requests": requests}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("bench/serve.py needs wrk: apt-get install wrk")
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        repo = make_repository(tmp_path / "repo")
        script = tmp_path / "post.lua"
        script.write_text(LUA.replace("BODY", json.dumps(REQUEST)))
        rows = []
        for name, code in SERVERS.items():
            port = free_port()
            process = start(code, port, repo, tmp_path / "state")
            try:
                wrk(port, args.connections, 2, script)  # warm-up
                loaded = wrk(port, args.connections, args.duration, script)
                alone = wrk(port, 1, max(3, args.duration // 3), script)
            finally:
                stop(process)
            rows.append((name, loaded, alone))
    print(f"tiny MLP, batch-1 JSON requests; {os.cpu_count()} CPUs; wrk, 1 thread")
    print(f"{'server':40} {'req/s @' + str(args.connections):>11} {'p50 ms':>7} {'p99 ms':>7} {'non-2xx':>7}"
          f" {'req/s @1':>9} {'p50 ms @1':>9}")
    for name, loaded, alone in rows:
        print(f"{name:40} {loaded['rps']:11.0f} {loaded['p50_ms']:7.2f} {loaded['p99_ms']:7.2f} "
              f"{loaded['non2xx'] + loaded['socket_errors']:7.0f} {alone['rps']:9.0f} {alone['p50_ms']:9.3f}")


if __name__ == "__main__":
    main()
