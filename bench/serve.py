"""Serving throughput, every server measured in one run with the same load generator.

Servers (each in its own process, stopped and swept before the next one starts):
  (a) embedded host: `mlops serve`'s serving app under uvicorn;
  (b) Ray Serve host: `framework.runtime.serving.ray_host:app` on an embedded Ray (2 CPUs), through
      Serve's HTTP proxy; and with RAY_SERVE_THROUGHPUT_OPTIMIZED=1 both through the
      proxy and straight to the replica's own HTTP server (direct ingress);
  (c) baseline: a naive FastAPI server running ONNX Runtime per request;
  (d) in-process ONNX Runtime at batch 32, no HTTP (rows/s and per-batch latency), with
      the serving app's session options (1 intra-op thread, no spinning), one caller.

Models (both churn's signature: 13 features in, 2 probabilities out, served under the
name `churn` with churn's config.pbtxt, so every server serves them unchanged):
  churn: the tiny MLP (32-16 hidden units);
  heavy: a wide/deep TabularNet (5 x 2048 hidden units) whose single-row forward costs
         >= 1 ms; its single-row ORT latency is measured and printed.

Load: `wrk` (apt-get install wrk), 1 thread, a Lua script POSTing one batch-1 KServe v2
JSON request, at each of --connections (default 8 and 64) for --duration seconds after
a warm-up (2 s before the first concurrency, 1 s before the others); (d) runs for
min(--duration, 5) s. Servers run one at a time, so they never compete. Prints req/s, p50/p99 and non-2xx per server and concurrency, the ratio
of each server to (c) measured in the same run, and whether the issue's goals are met.
Run: `python bench/serve.py [--duration 10] [--connections 8,64] [--models churn,heavy]
[--servers embedded,ray,ray-fast,naive,ort]`.
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
from tests.processes import session_members  # noqa: E402

RECIPE = "generated/churn/dev/recipe.resolved.yaml"
ROW = [1.0, 24.0, 70.5, 1690.2, 2.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0]
REQUEST = {"inputs": [{"name": "features", "shape": [1, 13], "datatype": "FP32", "data": ROW}]}
INFER_PATH = "/v2/models/churn/infer"
MODELS = {  # name: (hidden sizes, description)
    "churn": ([32, 16], "churn's tiny MLP, 13-32-16-2"),
    "heavy": ([2048] * 5, "wide/deep TabularNet, 13-5x2048-2"),
}
HEAVY_MIN_MS = 1.0
GOALS = {"embedded": {"churn": 2.0, "heavy": 4.0}, "ray": {"churn": 0.6}}
BATCH = 32

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
from framework.runtime.serving.host import build_app, serve_forever
app = build_app(RECIPE, REPO, STATE)
serve_forever(app, "127.0.0.1", PORT)
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
    labels: list[str]  # one per endpoint: the proxy port, then (ray-fast) the replica's own port
    env: dict[str, str] = field(default_factory=dict)
    startup_s: float = 60.0


SERVERS = [
    Server("embedded", EMBEDDED, ["(a) embedded host (serving app, uvicorn)"]),
    Server("ray", RAY, ["(b) Ray Serve host, HTTP proxy"], RAY_ENV, 240.0),
    Server("ray-fast", RAY, ["(b) Ray Serve, THROUGHPUT_OPTIMIZED, proxy", "(b) Ray Serve, THROUGHPUT_OPTIMIZED, direct"],
           {**RAY_ENV, "RAY_SERVE_THROUGHPUT_OPTIMIZED": "1", "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": "0"}, 240.0),
    Server("naive", BASELINE, ["(c) naive FastAPI + ORT per request"]),
]
ORT_LABEL = f"(d) in-process ORT, batch {BATCH} (rows/s, ms/b)"
SERVER_KEYS = [s.key for s in SERVERS] + ["ort"]

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
def make_repository(folder: Path, hidden_sizes: list[int] = (32, 16)) -> Path:
    """churn's config.pbtxt and one version of a TabularNet MLP (default: the tiny 32-16)."""
    import torch

    from framework import api
    from framework.runtime.training.export import export_onnx
    from framework.runtime.training.model import TabularNet
    from framework.signature import model_signature
    from framework.targets.triton import render

    recipe = api.load_recipe("churn", project=ROOT).recipe
    width = model_signature(recipe).input.width
    torch.manual_seed(0)
    export_onnx(TabularNet(width=width, outputs=2, task="classification", hidden_sizes=list(hidden_sizes)), recipe,
                folder / "churn" / "1" / "model.onnx")
    (artifact,) = render(recipe)
    (folder / "churn" / "config.pbtxt").write_text(artifact.text)
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


def time_runs(session, rows: int, seconds: float) -> tuple[float, list[float]]:
    """(elapsed seconds, per-run latencies in seconds) of back-to-back runs of `rows` rows."""
    import numpy as np

    x = np.tile(np.asarray(ROW, dtype=np.float32), (rows, 1))
    feed = {session.get_inputs()[0].name: x}
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


def single_row_ms(path: Path) -> dict[str, float]:
    """Median single-row forward latency with the serving app's options and with ORT's defaults."""
    import numpy as np

    return {name: float(np.median(time_runs(ort_session(path, opts), 1, 1.0)[1])) * 1e3
            for name, opts in (("serving", True), ("default", False))}


def in_process(path: Path, seconds: float) -> dict[str, float]:
    """(d): batch-32 runs back to back on one session with the serving app's options."""
    import numpy as np

    elapsed, latencies = time_runs(ort_session(path, True), BATCH, seconds)
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




def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Running:
    """A server subprocess in its own session; endpoints: the ports wrk loads."""

    def __init__(self, server: Server, repo: Path, state: Path, log: Path):
        self.server = server
        port = free_port()
        self.endpoints = [port]
        env = {**os.environ, **server.env}
        if len(server.labels) > 1:  # direct ingress: pin the replica's HTTP port to a free one
            direct = free_port()
            env["RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT"] = str(direct)
            env["RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT"] = str(direct + 1)
            self.endpoints.append(direct)
        source = (server.code.replace("PORT", str(port)).replace("RECIPE", repr(RECIPE))
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
        pending = list(self.endpoints)
        while pending and time.monotonic() - begin < self.server.startup_s:
            if self.process.poll() is not None:
                break
            pending = [p for p in pending if not ready(p)]
            if pending:
                time.sleep(0.2)
        if pending:
            self.stop()
            tail = self.log.read_text(errors="replace").splitlines()[-15:]
            raise RuntimeError(f"{self.server.key} did not become ready in {self.server.startup_s:.0f} s "
                               f"(exit code {self.process.returncode}); log tail:\n  " + "\n  ".join(tail))
        return time.monotonic() - begin

    def stop(self) -> list[int]:
        """SIGINT (both hosts shut down cleanly on it), then sweep the session: SIGTERM,
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
def fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def print_table(model: str, info: str, rows: dict[str, dict[int, dict]], connections: list[int]) -> None:
    baseline = next((r for label, r in rows.items() if label.startswith("(c)")), None)
    print(f"\nmodel {model}: {info}")
    head = f"{'server':44}"
    for c in connections:
        head += f" {'req/s@' + str(c):>10} {'p50 ms':>7} {'p99 ms':>7}"
    head += f" {'non-2xx':>7}" + "".join(f" {'x(c)@' + str(c):>8}" for c in connections)
    print(head)
    print("-" * len(head))
    for label, results in rows.items():
        if label.startswith("(d)"):
            # no concurrency: the one measurement goes under the first connection count
            r = results[connections[0]]
            line = f"{label:44} {r['rps']:10.0f} {r['p50_ms']:7.2f} {r['p99_ms']:7.2f}"
            line += f" {'':>10} {'':>7} {'':>7}" * (len(connections) - 1) + f" {'-':>7}" + f" {'-':>8}" * len(connections)
            print(line)
            continue
        line = f"{label:44}"
        for c in connections:
            r = results.get(c)
            line += (f" {r['rps']:10.0f} {r['p50_ms']:7.2f} {r['p99_ms']:7.2f}" if r else f" {'failed':>10} {'-':>7} {'-':>7}")
        errors = sum(r["non2xx"] for r in results.values())
        line += f" {errors:7.0f}"
        for c in connections:
            r, b = results.get(c), (baseline or {}).get(c)
            line += f" {fmt_ratio(r['rps'] / b['rps'] if r and b else None):>8}"
        print(line)
    socket_errors = {label: sum(r["socket_errors"] for r in results.values())
                     for label, results in rows.items() if not label.startswith("(d)")}
    for label, count in socket_errors.items():
        if count:
            print(f"  note: {label}: {count:.0f} socket errors (connect/read/write/timeout)")


def goal_lines(model: str, rows: dict[str, dict[int, dict]], connections: list[int]) -> list[tuple[str, bool | None]]:
    """(text, met) per goal; met None: not measurable in this run."""
    baseline = next((r for label, r in rows.items() if label.startswith("(c)")), None)
    out: list[tuple[str, bool | None]] = []
    targets = [(label, GOALS["embedded"].get(model), True) for label in rows if label.startswith("(a)")]
    targets += [(label, GOALS["ray"].get(model), False) for label in rows if label.startswith("(b)")]
    for label, factor, check_p99 in targets:
        if factor is None:
            continue
        for c in connections:
            r, b = rows[label].get(c), (baseline or {}).get(c)
            goal = f"{model}: {label} >= {factor:g}x (c) req/s" + (" and p99 below (c)'s" if check_p99 else "") + f" @ c={c}"
            if not r or not b:
                out.append((f"{goal}: not measured", None))
                continue
            ratio = r["rps"] / b["rps"]
            met = ratio >= factor and r["non2xx"] == 0
            detail = f"{ratio:.2f}x"
            if check_p99:
                met = met and r["p99_ms"] < b["p99_ms"]
                detail += f", p99 {r['p99_ms']:.2f} vs {b['p99_ms']:.2f} ms"
            if r["non2xx"]:
                detail += f", {r['non2xx']:.0f} non-2xx"
            out.append((f"{goal}: {detail}", met))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per server and concurrency")
    parser.add_argument("--connections", default="8,64", help="comma-separated wrk connection counts")
    parser.add_argument("--models", default="churn,heavy", help=f"comma-separated, of {','.join(MODELS)}")
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
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

    began = time.monotonic()
    load = os.getloadavg()
    print(f"bench/serve.py: {os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at start; "
          f"wrk 1 thread, batch-1 KServe v2 JSON, {args.duration} s per concurrency after a 1-2 s warm-up", flush=True)
    all_goals: list[tuple[str, bool | None]] = []
    leftovers: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        tmp_path = Path(tmp)
        script = tmp_path / "post.lua"
        script.write_text(LUA.replace("BODY", json.dumps(REQUEST)))
        tables = []
        for model in models:
            hidden, info = MODELS[model]
            repo = make_repository(tmp_path / model / "repo", hidden)
            single = single_row_ms(model_file(repo))
            info += (f"; single-row ORT forward p50 {single['serving']:.3f} ms (serving options, 1 thread), "
                     f"{single['default']:.3f} ms (ORT defaults)")
            print(f"[{model}] {info}", flush=True)
            if model == "heavy":
                proof = min(single.values())
                all_goals.append((f"heavy: single-row ORT forward >= {HEAVY_MIN_MS:g} ms: {proof:.3f} ms (the faster of the two)",
                                  proof >= HEAVY_MIN_MS))
            rows: dict[str, dict[int, dict]] = {}
            for server in SERVERS:
                if server.key not in servers:
                    continue
                try:
                    running = Running(server, repo, tmp_path / model / f"state-{server.key}",
                                      tmp_path / f"{model}-{server.key}.log")
                except RuntimeError as exc:
                    print(f"[{model}] {exc}", flush=True)
                    for label in server.labels:
                        rows[label] = {}
                    continue
                print(f"[{model}] {server.key}: ready in {running.started_s:.1f} s", flush=True)
                try:
                    for label, port in zip(server.labels, running.endpoints):
                        rows[label] = {}
                        for i, c in enumerate(connections):
                            try:
                                wrk(port, c, 1 if i else 2, script)  # warm-up
                                rows[label][c] = wrk(port, c, args.duration, script)
                            except (subprocess.CalledProcessError, StopIteration) as exc:
                                print(f"[{model}] {label} @ c={c}: wrk failed: {exc}", flush=True)
                                continue
                            r = rows[label][c]
                            print(f"[{model}] {label} @ c={c}: {r['rps']:.0f} req/s, p50 {r['p50_ms']:.2f} ms, "
                                  f"p99 {r['p99_ms']:.2f} ms, non-2xx {r['non2xx']:.0f}", flush=True)
                finally:
                    left = running.stop()
                    if left:
                        leftovers.append(f"{model}/{server.key}: pids {left}")
            if "ort" in servers:
                r = in_process(model_file(repo), min(args.duration, 5))
                rows[ORT_LABEL] = {connections[0]: r}
                print(f"[{model}] {ORT_LABEL}: {r['rps']:.0f} rows/s, per batch p50 {r['p50_ms']:.2f} ms, "
                      f"p99 {r['p99_ms']:.2f} ms", flush=True)
            tables.append((model, info, rows))
            all_goals += goal_lines(model, rows, connections)

    load = os.getloadavg()
    print(f"\nresults ({time.monotonic() - began:.0f} s; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the end)")
    print("req/s and p50/p99 over wrk's requests (non-2xx counted in req/s, listed separately); x(c): req/s "
          "relative to (c) at the same concurrency, same run; (d) has no HTTP and no concurrency: rows/s and "
          "latency per batch of 32, one caller")
    print("(b) proxy: wrk -> Serve's HTTP proxy actor -> replica; (b) direct: wrk -> the replica's own HTTP server "
          "(direct ingress, RAY_SERVE_THROUGHPUT_OPTIMIZED=1), no proxy")
    for model, info, rows in tables:
        print_table(model, info, rows, connections)
    print("\ngoals")
    for text, met in all_goals:
        print(f"  [{'MET' if met else 'not measured' if met is None else 'NOT MET'}] {text}")
    print(f"\nprocesses left running: {'; '.join(leftovers) if leftovers else 'none'}")


if __name__ == "__main__":
    main()
