"""`mlops apply churn` wall time, cold and re-applied, against `mlops validate churn`
measured in the same run (what any command that reads the recipe pays).

In a fresh copy of the project (recipes, data, pyproject.toml; no .mlops/):
  cold:     the first apply (trains, registers, makes version 1 the champion);
  cached:   apply again with nothing changed: the step cache reuses the finished run
            and the rollout is skipped (version 1 is the champion already);
  dry run:  `apply --dry-run`, which asks the cache per step;
  no cache: `apply --no-cache`, training again on a machine that has applied before
            (a second version, rolled out by canary against the first).
Each command runs as a user runs it (`mlops` in a subprocess); cached, dry run and the
baseline are medians of --runs. Goals (issue 17): cached <= 3 s, cold <= 15 s.
Run: `python bench/apply.py [--runs 5] [--keep DIR]`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MLOPS = str(Path(sys.executable).with_name("mlops"))
GOALS = {"cold apply": 15.0, "cached re-apply": 3.0}
ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled", "MLFLOW_DISABLE_TELEMETRY": "true"}


def project_copy(folder: Path) -> Path:
    root = folder / "proj"
    root.mkdir()
    for name in ("recipes", "data"):
        shutil.copytree(ROOT / name, root / name)
    shutil.copy(ROOT / "pyproject.toml", root)
    return root


def seconds(root: Path, *args: str, expect: str | None = None) -> float:
    start = time.perf_counter()
    done = subprocess.run([MLOPS, *args], cwd=root, env=ENV, capture_output=True, text=True)
    took = time.perf_counter() - start
    if done.returncode != 0 or (expect and expect not in done.stdout + done.stderr):
        sys.exit(f"mlops {' '.join(args)} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return took


def median(root: Path, runs: int, *args: str, expect: str | None = None) -> float:
    return statistics.median(seconds(root, *args, expect=expect) for _ in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", type=Path, help="apply in this (empty) folder and keep it")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench-apply-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        root = project_copy(folder)
        baseline = median(root, args.runs, "validate", "churn")
        results = {"cold apply": seconds(root, "apply", "churn", expect="promoted version 1 to champion")}
        results["cached re-apply"] = median(root, args.runs, "apply", "churn", expect="training job cached")
        results["dry run"] = median(root, args.runs, "apply", "churn", "--dry-run", expect="[cached (run")
        results["no-cache apply"] = seconds(root, "apply", "churn", "--no-cache", expect="model version 2")
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)
    print(f"load average at the end: {os.getloadavg()[0]:.2f} (2-core figures move with it)")
    print(f"{'command':22} {'seconds':>8} {'x validate':>11} {'goal s':>7}")
    print(f"{'mlops validate churn':22} {baseline:8.2f} {1.0:11.2f}")
    for name, took in results.items():
        goal = GOALS.get(name)
        verdict = "" if goal is None else ("met" if took <= goal else "NOT met")
        print(f"{name:22} {took:8.2f} {took / baseline:11.2f} {goal or '':>7} {verdict}")
    print(f"cached re-apply / cold apply: {results['cached re-apply'] / results['cold apply']:.3f}")


if __name__ == "__main__":
    main()
