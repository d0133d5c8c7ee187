"""Feast in the loop: the point-in-time join that feeds training, and an online lookup
per request, each against its baseline measured in the same run.

  join:    `get_historical_features` over churn_features' 5,000 label rows (median of
           --runs), against reading the same features from a file (data/churn.csv)
  serving: `mlops serve churn-features` under wrk (1 thread, --connections, --duration s),
           one row per request: by entity id (`[{"customer_id": ...}]`, rotating over 500
           customers: the app reads the sqlite online store) against the same model with
           the features in the request (KServe v2 JSON)

The project is a fresh copy of this one, applied first (`mlops apply churn_features`,
2 epochs), unless --project names one already applied.
Run: `python bench/features.py [--duration 10] [--connections 64] [--runs 5] [--project DIR]`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
MLOPS = [sys.executable, "-m", "framework.cli"]
INFER = "/v2/models/churn-features/infer"
FEATURES = ["tenure_months", "monthly_charges", "total_charges", "support_calls", "num_products", "senior_citizen",
            "contract", "payment_method"]

LUA = '''
ids = {IDS}
counter = 0
request = function()
  counter = counter + 1
  BODY_LINE
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %.1f %.1f\\n", summary.requests, summary.duration, summary.errors.status,
    latency:percentile(50), latency:percentile(99)))
end
'''
BY_ID = ('local body = \'[{"customer_id": "\' .. ids[(counter % #ids) + 1] .. \'"}]\'\n'
         '  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)')
BY_FEATURES = 'return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, [[BODY]])'


def applied_copy(folder: Path) -> Path:
    """A copy of the project (recipes, labels, feature repository), applied."""
    root = folder / "proj"
    root.mkdir()
    for name in ("recipes", "feature_repo"):
        shutil.copytree(ROOT / name, root / name, ignore=shutil.ignore_patterns("*.db", "__pycache__"))
    (root / "data").mkdir()
    shutil.copy(ROOT / "data" / "churn_labels.csv", root / "data")
    shutil.copy(ROOT / "pyproject.toml", root)
    recipe = root / "recipes" / "churn_features.yaml"
    recipe.write_text(recipe.read_text() + "\ntraining:\n  epochs: 2\n  workers: 1\n")
    print("applying churn_features in a copy of the project ...", flush=True)
    subprocess.run([*MLOPS, "apply", "churn_features"], cwd=root, check=True, capture_output=True,
                   env={**os.environ, "PYTHONPATH": str(ROOT), "RAY_USAGE_STATS_ENABLED": "0"})
    return root


def time_join(root: Path, runs: int) -> tuple[float, float]:
    """(median seconds of the join, median seconds of reading the features from a file)."""
    import pandas as pd

    from framework import api
    from framework.runtime.features.join import join_features

    recipe = api.load_recipe("churn_features", project=root).recipe
    labels = pd.read_csv(root / "data" / "churn_labels.csv")
    join_features(recipe, root, labels)  # Feast's imports and the registry, once
    joins, reads = [], []
    for _ in range(runs):
        started = time.perf_counter()
        join_features(recipe, root, labels)
        joins.append(time.perf_counter() - started)
        started = time.perf_counter()
        pd.read_csv(ROOT / "data" / "churn.csv")[["customer_id", *FEATURES]]
        reads.append(time.perf_counter() - started)
    return statistics.median(joins), statistics.median(reads)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise SystemExit("the server did not become ready")


def wrk(port: int, connections: int, seconds: int, script: Path) -> dict[str, float]:
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s", "-s", str(script),
                          f"http://127.0.0.1:{port}{INFER}"], capture_output=True, text=True, check=True).stdout
    line = next(line for line in out.splitlines() if line.startswith("RESULT"))
    requests, duration_us, non2xx, p50, p99 = (float(v) for v in line.split()[1:])
    return {"rps": requests / (duration_us / 1e6), "p50_ms": p50 / 1e3, "p99_ms": p99 / 1e3, "non2xx": non2xx}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--project", type=Path, help="a project where churn_features is applied already")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("bench/features.py needs wrk: apt-get install wrk")
    with tempfile.TemporaryDirectory() as folder:
        root = args.project.resolve() if args.project else applied_copy(Path(folder))
        join_s, read_s = time_join(root, args.runs)
        import pandas as pd

        current = pd.read_csv(ROOT / "data" / "churn.csv")
        ids = list(current["customer_id"][:500])
        row = current.iloc[0]
        body = json.dumps({"inputs": [
            {"name": n, "shape": [1, 1], "datatype": "BYTES" if n in ("contract", "payment_method") else "FP32",
             "data": [str(row[n]) if n in ("contract", "payment_method") else float(row[n])]} for n in FEATURES]})
        port = free_port()
        server = subprocess.Popen([*MLOPS, "serve", "churn_features", "--port", str(port)], cwd=root,
                                  env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL, start_new_session=True)
        results = {}
        try:
            wait_ready(port)
            for label, line in (("features in the request", BY_FEATURES.replace("BODY", body)),
                                ("entity id, online lookup", BY_ID)):
                script = Path(folder) / "load.lua"
                script.write_text(LUA.replace("{IDS}", "{" + ",".join(f'"{i}"' for i in ids) + "}")
                                  .replace("BODY_LINE", line))
                wrk(port, args.connections, 2, script)  # warm-up
                results[label] = wrk(port, args.connections, args.duration, script)
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(f"\nhistorical join, 5,000 label rows x 8 features: {join_s * 1e3:.0f} ms (median of {args.runs}); "
          f"reading them from a file: {read_s * 1e3:.1f} ms; ratio {join_s / read_s:.1f}x")
    print(f"serving, one row per request, wrk c={args.connections}, {args.duration} s:")
    print(f"  {'':26} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}")
    for label, r in results.items():
        print(f"  {label:26} {r['rps']:8.0f} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {r['non2xx']:8.0f}")
    base, lookup = results["features in the request"], results["entity id, online lookup"]
    print(f"  lookup / features: req/s {lookup['rps'] / base['rps']:.2f}x, p50 {lookup['p50_ms'] / base['p50_ms']:.1f}x, "
          f"p99 {lookup['p99_ms'] / base['p99_ms']:.1f}x")


if __name__ == "__main__":
    main()
