"""Serving throughput, every server measured in one run with the same load generator.

Servers (each in its own process, stopped and swept before the next one starts):
  embedded:   `mlops serve`'s serving app (framework/runtime/serving/) under its HTTP server;
  triton:     the real Triton Inference Server 2.51 (nvidia-pytriton's build, `make tools`),
              the same config.pbtxt with the platform swapped for the python backend running
              the same ONNX file with ONNX Runtime (tests/serving/tritonserver.py), dynamic
              batching and 2 instances as generated;
  asgi-floor: a constant-answer raw ASGI app under the embedded host's uvicorn settings
              (reads the body, sends a fixed answer of the real one's size): the HTTP floor;
  ray:        the Ray Serve host (`framework.runtime.serving.ray_host:app`) on an embedded
              Ray (2 CPUs) with the environment the generated RayService's pods carry
              (framework/contracts/ray.py SERVE_ENV: HAProxy on the serve port forwarding
              to the replica's own HTTP server) and the deployment's logging config, loaded
              on the serve port as the RayService's Service sends requests;
  ray-plain:  the same host with Ray Serve's defaults: Serve's proxy actor on that port;
  naive:      a naive FastAPI server running ONNX Runtime per request (the seed's baseline);
  ort:        in-process ONNX Runtime at batch 32, no HTTP (rows/s and per-batch latency),
              with the serving app's session options (1 intra-op thread, no spinning).

Models (churn's signature: its 8 raw columns in, `probabilities` and `label` out, the
preprocessing inside the ONNX graph, served as `churn` with churn's config.pbtxt, so every
server serves them unchanged; untrained TabularNet weights):
  churn:  churn's MLP (hidden 64-32, recipes/model/mlp.yaml);
  issue:  the issue's model (hidden 32-256-256, 2 outputs);
  heavy:  a wide/deep TabularNet (5 x 2048 hidden units) whose single-row forward costs
          >= 1 ms; its single-row ORT latency is measured and printed.

Load: `wrk` (apt-get install wrk), 1 thread, a Lua script POSTing one batch-1 KServe v2
JSON request (one row of data/churn.csv), at each of --connections (default 8 and 64) for
--duration seconds after a warm-up (2 s before the first concurrency, 1 s before the
others); ort runs for min(--duration, 5) s. Servers run one at a time, so they never
compete. Prints req/s, p50/p99 and non-2xx per server and concurrency, each server's
ratio to naive and to embedded in the same run, and whether the issue's goals are met.
Run: `python bench/serve.py [--duration 10] [--connections 8,64] [--models churn,issue,heavy]
[--servers embedded,triton,asgi-floor,ray,ray-plain,naive,ort]`.
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
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from framework.contracts.ray import SERVE_ENV  # noqa: E402
from tests.processes import session_members  # noqa: E402

RECIPE = "generated/churn/dev/recipe.resolved.yaml"
CSV = ROOT / "data" / "churn.csv"
CSV_ROW = 0  # the request's row
INFER_PATH = "/v2/models/churn/infer"
MODELS = {  # name: (hidden sizes, description)
    "churn": ([64, 32], "churn's MLP, hidden 64-32"),
    "issue": ([32, 256, 256], "the issue's model, hidden 32-256-256, 2 outputs"),
    "heavy": ([2048] * 5, "wide/deep TabularNet, hidden 5x2048"),
}
HEAVY_MIN_MS = 1.0
BATCH = 32
# (server, reference, factor, concurrency (None: each), p99 no worse than the reference's)
GOALS = [
    ("embedded", "triton", 1.3, 64, True),
    ("embedded", "asgi-floor", 0.6, 64, False),
    ("ray", "naive", 0.6, None, False),
    ("embedded", "naive", 2.0, None, True),
]

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
    data: list[float | str]
class Request(BaseModel):
    inputs: list[Tensor]
@app.get("/v2/health/ready")
def ready():
    return {}
@app.post("/v2/models/churn/infer")
async def infer(request: Request):
    feed = {t.name: (np.array(t.data, dtype=object) if t.datatype == "BYTES" else np.asarray(t.data, dtype=np.float32))
            .reshape(t.shape) for t in request.inputs}
    probabilities, label = session.run(None, feed)
    return {"model_name": "churn", "outputs": [
        {"name": "probabilities", "datatype": "FP32", "shape": list(probabilities.shape), "data": probabilities.ravel().tolist()},
        {"name": "label", "datatype": "BYTES", "shape": list(label.shape), "data": label.ravel().tolist()}]}
uvicorn.run(app, host="127.0.0.1", port=PORT, log_level="warning", access_log=False)
'''

EMBEDDED = '''
from framework.runtime.serving.host import build_app, serve_forever
app = build_app(RECIPE, REPO, STATE)
serve_forever(app, "127.0.0.1", PORT)
'''

# A constant answer the size of the embedded host's; the same uvicorn settings (host._server).
ASGI_FLOOR = '''
from framework.runtime.serving.host import listen, _server
ANSWER = (b\'{"model_name":"churn","model_version":"1","outputs":[{"name":"probabilities","datatype":"FP32",\'
          b\'"shape":[1,2],"data":[0.7364358,0.2635642]},{"name":"label","datatype":"BYTES","shape":[1,1],"data":["0"]}]}\')
START = {"type": "http.response.start", "status": 200,
         "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(ANSWER)).encode())]}
BODY = {"type": "http.response.body", "body": ANSWER}
READY = {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]}
async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    more = True
    while more:
        more = (await receive()).get("more_body", False)
    if scope["method"] == "GET":
        await send(READY)
        await send({"type": "http.response.body", "body": b""})
    else:
        await send(START)
        await send(BODY)
sock = listen("127.0.0.1", PORT)
try:
    _server(app, sock).run(sockets=[sock])
except KeyboardInterrupt:
    pass
'''

# Triton itself: lay out the python-backend repository, then become tritonserver (SIGINT stops it).
TRITON = '''
import os
from pathlib import Path
from tests.serving.tritonserver import as_python_models, command, install, prepare_backends
found = install()
work = Path(STATE)
repository = as_python_models(Path(REPO), work / "repository")
argv, env = command(found, repository, prepare_backends(found, work / "backends"), PORT)
os.execve(argv[0], argv, env)
'''

# Ray installs its own SIGTERM handler in ray.init, so ours go in after it: both SIGINT
# and SIGTERM shut Serve and Ray down, which stops the actors, raylet and GCS.
RAY = '''
import signal, threading
import ray
from ray import serve
from framework.runtime.serving.ray_host import app as build
stop = threading.Event()
ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
for s in (signal.SIGINT, signal.SIGTERM):
    signal.signal(s, lambda *_: stop.set())
try:
    serve.start(http_options={"host": "127.0.0.1", "port": PORT})
    serve.run(build({"recipe": RECIPE, "model_repository": REPO, "state_dir": STATE}),
              name="churn", route_prefix="/", blocking=False)
    stop.wait()
finally:
    serve.shutdown()
    ray.shutdown()
'''

RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}


@dataclass
class Server:
    key: str  # --servers name
    code: str
    label: str
    env: dict[str, str] = field(default_factory=dict)
    startup_s: float = 60.0


SERVERS = [
    Server("embedded", EMBEDDED, "embedded host (serving app)"),
    Server("triton", TRITON, "Triton 2.51 (python backend + ORT)"),
    Server("asgi-floor", ASGI_FLOOR, "raw ASGI constant answer (uvicorn)"),
    Server("ray", RAY, "Ray Serve host, RayService mode (HAProxy)", {**RAY_ENV, **SERVE_ENV}, 240.0),
    Server("ray-plain", RAY, "Ray Serve host, Serve default env (proxy actor)", RAY_ENV, 240.0),
    Server("naive", BASELINE, "naive FastAPI + ORT per request"),
]
ORT_LABEL = f"in-process ORT, batch {BATCH} (rows/s, ms/b)"
SERVER_KEYS = [s.key for s in SERVERS] + ["ort"]
LABELS = {**{s.key: s.label for s in SERVERS}, "ort": ORT_LABEL}

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


# --- models ---------------------------------------------------------------------------
def churn_recipe():
    from framework import api

    return api.load_recipe("churn", project=ROOT).recipe


def request_body(recipe) -> dict:
    """One row of data/churn.csv as a batch-1 KServe v2 JSON request, a tensor per column."""
    import pandas as pd

    from framework.signature import model_signature

    row = pd.read_csv(CSV).iloc[CSV_ROW]
    return {"inputs": [{"name": t.name, "shape": [1, 1], "datatype": t.dtype,
                        "data": [str(row[t.name]) if t.dtype == "BYTES" else float(row[t.name])]}
                       for t in model_signature(recipe).inputs]}


def make_repository(folder: Path, recipe, hidden_sizes: list[int]) -> Path:
    """churn's config.pbtxt and one version of a TabularNet MLP (untrained weights, the
    churn pipeline's preprocessing in the graph), exported by the framework's exporter."""
    import pandas as pd
    import torch

    from framework.runtime.training.export import export_onnx
    from framework.runtime.training.features import FeaturePipeline
    from framework.runtime.training.model import TabularNet
    from framework.runtime.serving.model_config import write_config

    pipeline = FeaturePipeline.fit(recipe, pd.read_csv(CSV))
    mean, std = pipeline.standardisation()
    torch.manual_seed(0)
    net = TabularNet(width=pipeline.width, outputs=pipeline.num_outputs, task=pipeline.task,
                     hidden_sizes=list(hidden_sizes), mean=mean, std=std).eval()
    export_onnx(net, recipe, pipeline, folder / "churn" / "1" / "model.onnx")
    write_config(folder / "churn", recipe)
    return folder


def model_file(repo: Path) -> Path:
    return repo / "churn" / "1" / "model.onnx"


def ort_session(path: Path, serving_options: bool):
    """serving_options: the serving app's (1 intra-op thread, no spinning); else ORT's defaults (the baseline's)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    if serving_options:
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def feed_of(request: dict, rows: int):
    import numpy as np

    return {t["name"]: np.array(t["data"] * rows, dtype=object if t["datatype"] == "BYTES" else np.float32).reshape(rows, 1)
            for t in request["inputs"]}


def time_runs(session, feed: dict, seconds: float) -> tuple[float, list[float]]:
    """(elapsed seconds, per-run latencies in seconds) of back-to-back runs of `feed`."""
    warm_until = time.perf_counter() + min(1.0, seconds / 4)
    while time.perf_counter() < warm_until:
        session.run(None, feed)
    latencies = []
    start = time.perf_counter()
    end = start + seconds
    now = start
    while now < end:
        session.run(None, feed)
        after = time.perf_counter()
        latencies.append(after - now)
        now = after
    return now - start, latencies


def single_row_ms(path: Path, request: dict) -> dict[str, float]:
    """Median single-row forward latency with the serving app's options and with ORT's defaults."""
    import numpy as np

    return {name: float(np.median(time_runs(ort_session(path, opts), feed_of(request, 1), 1.0)[1])) * 1e3
            for name, opts in (("serving", True), ("default", False))}


def in_process(path: Path, request: dict, seconds: float) -> dict[str, float]:
    """ort: batch-32 runs back to back on one session with the serving app's options."""
    import numpy as np

    elapsed, latencies = time_runs(ort_session(path, True), feed_of(request, BATCH), seconds)
    ms = np.asarray(latencies) * 1e3
    return {"rps": len(latencies) * BATCH / elapsed, "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99)), "non2xx": 0, "socket_errors": 0}


# --- server processes -----------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=2) as response:
            return response.status == 200
    except (OSError, urllib.error.HTTPError):
        return False


def session_cpu_s(sid: int) -> float:
    """CPU seconds (user + system) the live processes of session `sid` have used."""
    ticks = 0
    for pid in session_members(sid):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
        except (OSError, IndexError, ValueError):
            pass
    return ticks / os.sysconf("SC_CLK_TCK")


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Running:
    """A server subprocess in its own session, on `port`."""

    def __init__(self, server: Server, repo: Path, state: Path, log: Path):
        self.server = server
        self.port = free_port()
        env = {**os.environ, **server.env}
        source = (server.code.replace("PORT", str(self.port)).replace("RECIPE", repr(RECIPE))
                  .replace("REPO", repr(str(repo))).replace("STATE", repr(str(state)))
                  .replace("MODEL", repr(str(model_file(repo)))))
        self.log = log
        self.log_file = open(log, "wb")
        self.process = subprocess.Popen([sys.executable, "-c", source], cwd=ROOT, env=env, start_new_session=True,
                                        stdin=subprocess.DEVNULL, stdout=self.log_file, stderr=subprocess.STDOUT)
        self.sid = self.process.pid
        self.started_s = self._wait_ready()

    def _wait_ready(self) -> float:
        begin = time.monotonic()
        up = False
        while not up and time.monotonic() - begin < self.server.startup_s:
            if self.process.poll() is not None:
                break
            up = ready(self.port)
            if not up:
                time.sleep(0.2)
        if not up:
            self.stop()
            tail = self.log.read_text(errors="replace").splitlines()[-15:]
            raise RuntimeError(f"{self.server.key} did not become ready in {self.server.startup_s:.0f} s "
                               f"(exit code {self.process.returncode}); log tail:\n  " + "\n  ".join(tail))
        return time.monotonic() - begin

    def stop(self) -> list[int]:
        """SIGINT (every server shuts down cleanly on it), then sweep the session: SIGTERM,
        then SIGKILL, whatever is left. Returns the pids that survived even that."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                print(f"  {self.server.key}: no exit 60 s after SIGINT; killing its session", file=sys.stderr)
        for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
            left = [p for p in session_members(self.sid) if alive(p)]
            if not left:
                break
            for pid in left:
                try:
                    os.kill(pid, sig)
                except OSError:
                    pass
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline and any(alive(p) for p in left):
                time.sleep(0.1)
        if self.process.poll() is None:
            self.process.wait(5)
        self.log_file.close()
        return [p for p in session_members(self.sid) if alive(p)]


def wrk(port: int, connections: int, seconds: int, script: Path) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s", "-s", str(script),
         f"http://127.0.0.1:{port}{INFER_PATH}"],
        capture_output=True, text=True, check=True,
    ).stdout
    line = next(l for l in out.splitlines() if l.startswith("RESULT"))
    requests, duration_us, status_errors, socket_errors, p50, p99 = (float(v) for v in line.split()[1:])
    return {"rps": requests / (duration_us / 1e6), "p50_ms": p50 / 1e3, "p99_ms": p99 / 1e3,
            "non2xx": status_errors, "socket_errors": socket_errors, "requests": requests}


# --- report ---------------------------------------------------------------------------
def ratio(rows: dict[str, dict[int, dict]], key: str, reference: str, c: int) -> float | None:
    r, b = rows.get(key, {}).get(c), rows.get(reference, {}).get(c)
    return r["rps"] / b["rps"] if r and b else None


def fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def print_table(model: str, info: str, rows: dict[str, dict[int, dict]], connections: list[int]) -> None:
    print(f"\nmodel {model}: {info}")
    head = f"{'server':44}"
    for c in connections:
        head += f" {'req/s@' + str(c):>10} {'p50 ms':>7} {'p99 ms':>7} {'CPU us':>6}"
    head += f" {'non-2xx':>7}" + "".join(f" {'xnaive@' + str(c):>9} {'xemb@' + str(c):>8}" for c in connections)
    print(head)
    print("-" * len(head))
    for key, results in rows.items():
        label = LABELS[key]
        if key == "ort":  # no concurrency: the one measurement goes under the first connection count
            r = results[connections[0]]
            line = f"{label:44} {r['rps']:10.0f} {r['p50_ms']:7.2f} {r['p99_ms']:7.2f} {'-':>6}"
            print(line + f" {'':>10} {'':>7} {'':>7} {'':>6}" * (len(connections) - 1) + f" {'-':>7}")
            continue
        line = f"{label:44}"
        for c in connections:
            r = results.get(c)
            line += (f" {r['rps']:10.0f} {r['p50_ms']:7.2f} {r['p99_ms']:7.2f} {r['cpu_us']:6.0f}" if r
                     else f" {'failed':>10} {'-':>7} {'-':>7} {'-':>6}")
        line += f" {sum(r['non2xx'] for r in results.values()):7.0f}"
        for c in connections:
            line += f" {fmt_ratio(ratio(rows, key, 'naive', c)):>9} {fmt_ratio(ratio(rows, key, 'embedded', c)):>8}"
        print(line)
    for key, results in rows.items():
        count = sum(r["socket_errors"] for r in results.values())
        if count:
            print(f"  note: {LABELS[key]}: {count:.0f} socket errors (connect/read/write/timeout)")


def goal_lines(model: str, rows: dict[str, dict[int, dict]], connections: list[int]) -> list[tuple[str, bool | None]]:
    """(text, met) per goal; met None: not measurable in this run."""
    out: list[tuple[str, bool | None]] = []
    for key, reference, factor, only, check_p99 in GOALS:
        if key not in rows and reference not in rows:
            continue
        for c in [only] if only else connections:
            goal = f"{model}: {key} >= {factor:g}x {reference} req/s" + (f", p99 <= {reference}'s" if check_p99 else "") + f" @ c={c}"
            r, b = rows.get(key, {}).get(c), rows.get(reference, {}).get(c)
            if not r or not b:
                out.append((f"{goal}: not measured", None))
                continue
            value = r["rps"] / b["rps"]
            met = value >= factor and r["non2xx"] == 0
            detail = f"{value:.2f}x ({r['rps']:.0f} vs {b['rps']:.0f})"
            if check_p99:
                met = met and r["p99_ms"] <= b["p99_ms"]
                detail += f", p99 {r['p99_ms']:.2f} vs {b['p99_ms']:.2f} ms"
            if r["non2xx"]:
                detail += f", {r['non2xx']:.0f} non-2xx"
            out.append((f"{goal}: {detail}", met))
    return out


def measure(server: Server, model: str, repo: Path, tmp: Path, script: Path, connections: list[int],
            duration: int, leftovers: list[str]) -> dict[int, dict]:
    try:
        running = Running(server, repo, tmp / model / f"state-{server.key}", tmp / f"{model}-{server.key}.log")
    except RuntimeError as exc:
        print(f"[{model}] {exc}", flush=True)
        return {}
    print(f"[{model}] {server.key}: ready in {running.started_s:.1f} s", flush=True)
    results: dict[int, dict] = {}
    try:
        for i, c in enumerate(connections):
            try:
                wrk(running.port, c, 1 if i else 2, script)  # warm-up
                cpu = session_cpu_s(running.sid)
                results[c] = r = wrk(running.port, c, duration, script)
                r["cpu_us"] = (session_cpu_s(running.sid) - cpu) / max(r["requests"], 1) * 1e6
            except (subprocess.CalledProcessError, StopIteration) as exc:
                print(f"[{model}] {server.key} @ c={c}: wrk failed: {exc}", flush=True)
                continue
            print(f"[{model}] {server.key} @ c={c}: {r['rps']:.0f} req/s, p50 {r['p50_ms']:.2f} ms, "
                  f"p99 {r['p99_ms']:.2f} ms, non-2xx {r['non2xx']:.0f}, server CPU {r['cpu_us']:.0f} us/request",
                  flush=True)
    finally:
        left = running.stop()
        if left:
            leftovers.append(f"{model}/{server.key}: pids {left}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per server and concurrency")
    parser.add_argument("--connections", default="8,64", help="comma-separated wrk connection counts")
    parser.add_argument("--models", default="churn,issue,heavy", help=f"comma-separated, of {','.join(MODELS)}")
    parser.add_argument("--servers", default=",".join(SERVER_KEYS), help=f"comma-separated, of {','.join(SERVER_KEYS)}")
    args = parser.parse_args()
    connections = [int(c) for c in args.connections.split(",") if c.strip()]
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    unknown = [m for m in models if m not in MODELS] + [s for s in servers if s not in SERVER_KEYS]
    if unknown or not connections or not models or not servers:
        parser.error(f"unknown or empty selection {unknown}; models: {','.join(MODELS)}; servers: {','.join(SERVER_KEYS)}")
    if shutil.which("wrk") is None:
        raise SystemExit("bench/serve.py needs wrk: apt-get install wrk")
    if "triton" in servers:
        from tests.serving.tritonserver import install

        if install() is None:
            raise SystemExit("server triton needs Triton: `make tools` installs it in .tools/triton-venv")
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

    began = time.monotonic()
    load = os.getloadavg()
    print(f"bench/serve.py: {os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at start; "
          f"wrk 1 thread, batch-1 KServe v2 JSON, {args.duration} s per concurrency after a 1-2 s warm-up", flush=True)
    all_goals: list[tuple[str, bool | None]] = []
    leftovers: list[str] = []
    recipe = churn_recipe()
    request = request_body(recipe)
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        tmp_path = Path(tmp)
        script = tmp_path / "post.lua"
        script.write_text(LUA.replace("BODY", json.dumps(request)))
        tables = []
        for model in models:
            hidden, info = MODELS[model]
            repo = make_repository(tmp_path / model / "repo", recipe, hidden)
            single = single_row_ms(model_file(repo), request)
            info += (f"; single-row ORT forward p50 {single['serving']:.3f} ms (serving options, 1 thread), "
                     f"{single['default']:.3f} ms (ORT defaults)")
            print(f"[{model}] {info}", flush=True)
            if model == "heavy":
                proof = min(single.values())
                all_goals.append((f"heavy: single-row ORT forward >= {HEAVY_MIN_MS:g} ms: {proof:.3f} ms (the faster of the two)",
                                  proof >= HEAVY_MIN_MS))
            rows: dict[str, dict[int, dict]] = {}
            for server in SERVERS:
                if server.key in servers:
                    rows[server.key] = measure(server, model, repo, tmp_path, script, connections, args.duration, leftovers)
            if "ort" in servers:
                r = in_process(model_file(repo), request, min(args.duration, 5))
                rows["ort"] = {connections[0]: r}
                print(f"[{model}] {ORT_LABEL}: {r['rps']:.0f} rows/s, per batch p50 {r['p50_ms']:.2f} ms, "
                      f"p99 {r['p99_ms']:.2f} ms", flush=True)
            tables.append((model, info, rows))
            all_goals += goal_lines(model, rows, connections)

    load = os.getloadavg()
    print(f"\nresults ({time.monotonic() - began:.0f} s; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the end)")
    print("req/s and p50/p99 over wrk's requests (non-2xx counted in req/s, listed separately); CPU us: the server's "
          "processes' CPU time (user + system, every process it started) per request, which other load on the "
          "machine moves far less than req/s; xnaive / xemb: req/s "
          "relative to the naive server / the embedded host at the same concurrency, same run; ort has no HTTP and no "
          "concurrency: rows/s and latency per batch of 32, one caller")
    for model, info, rows in tables:
        print_table(model, info, rows, connections)
    print("\ngoals")
    for text, met in all_goals:
        print(f"  [{'MET' if met else 'not measured' if met is None else 'NOT MET'}] {text}")
    print(f"\nprocesses left running: {'; '.join(leftovers) if leftovers else 'none'}")


if __name__ == "__main__":
    main()
