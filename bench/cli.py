"""CLI start-up: wall-time medians of `mlops --help` and `mlops validate`, cold (no parse
cache: it is cleared before each run) and warm (the cache of the run before), against
`python -c "import hydra, pydantic"` (the floor any Hydra + pydantic CLI pays), all
measured in this run. Run: `make bench` or `python bench/cli.py`.

Commands run as `python -m framework.cli` from this checkout, so they measure its code.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

RUNS = 10
ROOT = Path(__file__).resolve().parents[1]
MLOPS = [sys.executable, "-m", "framework.cli"]
CACHE = ROOT / ".mlops" / "cache"  # the project's state dir (pyproject.toml [tool.mlops])

# name -> (command, cold: clear the cache before each run)
CASES = {
    "baseline: python -c 'import hydra, pydantic'": ([sys.executable, "-c", "import hydra, pydantic"], False),
    "mlops --help": ([*MLOPS, "--help"], False),
    "mlops validate churn (cold)": ([*MLOPS, "validate", "churn"], True),
    "mlops validate churn (warm)": ([*MLOPS, "validate", "churn"], False),
    "mlops validate --all-envs (cold)": ([*MLOPS, "validate", "--all-envs"], True),
    "mlops validate --all-envs (warm)": ([*MLOPS, "validate", "--all-envs"], False),
}
GOALS = {"mlops --help": 0.20, "mlops validate churn (cold)": 0.35, "mlops validate churn (warm)": 0.15}


def median_seconds(command: list[str], cold: bool) -> float:
    env = {k: v for k, v in os.environ.items() if k != "MLOPS_NO_CACHE"}
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True, env=env)  # warm the file (and parse) cache
    times = []
    for _ in range(RUNS):
        if cold:
            shutil.rmtree(CACHE / "recipes", ignore_errors=True)
        start = time.perf_counter()
        subprocess.run(command, cwd=ROOT, check=True, capture_output=True, env=env)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    results = {name: median_seconds(command, cold) for name, (command, cold) in CASES.items()}
    baseline = next(iter(results.values()))
    print(f"load average: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'command':42} {'median s':>9} {'x baseline':>10} {'goal s':>7}  met")
    for name, seconds in results.items():
        goal = GOALS.get(name)
        met = ("yes" if seconds <= goal else "no") if goal else ""
        print(f"{name:42} {seconds:9.3f} {seconds / baseline:10.2f} {goal if goal else '':>7}  {met}")
    cold, warm = results["mlops validate churn (cold)"], results["mlops validate churn (warm)"]
    print(f"warm / cold (validate churn): {warm / cold:.2f}")


if __name__ == "__main__":
    main()
