"""CLI start-up: wall-time medians of `mlops --help` and `mlops validate churn`,
against `python -c "import hydra, pydantic"` (the floor any Hydra + pydantic CLI
pays), all measured in this run. Run: `make bench` or `python bench/cli.py`.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

RUNS = 10
ROOT = Path(__file__).resolve().parents[1]
MLOPS = str(Path(sys.executable).with_name("mlops"))

COMMANDS = {
    "baseline: python -c 'import hydra, pydantic'": [sys.executable, "-c", "import hydra, pydantic"],
    "mlops --help": [MLOPS, "--help"],
    "mlops validate churn": [MLOPS, "validate", "churn"],
    "mlops validate (all recipes, all envs)": [MLOPS, "validate", "--all-envs"],
}
GOALS = {"mlops --help": 0.20, "mlops validate churn": 0.35}


def median_seconds(command: list[str]) -> float:
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)  # warm the file cache
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    results = {name: median_seconds(cmd) for name, cmd in COMMANDS.items()}
    baseline = next(iter(results.values()))
    print(f"{'command':42} {'median s':>9} {'x baseline':>10} {'goal s':>7}")
    for name, seconds in results.items():
        goal = GOALS.get(name)
        print(f"{name:42} {seconds:9.3f} {seconds / baseline:10.2f} {goal if goal else '':>7}")


if __name__ == "__main__":
    main()
