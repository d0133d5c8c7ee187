"""`python -m framework.runtime.monitor RESOLVED [--current PATH]`: the drift CronJob's
entrypoint, the same check as `mlops monitor`. Exit 0 no drift, 3 drift, 1 error."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m framework.runtime.monitor", description=__doc__.splitlines()[0])
    parser.add_argument("resolved", type=Path, help="recipe.resolved.yaml written by `mlops generate`")
    parser.add_argument("--current", type=Path, help="csv or parquet to compare instead of the request log")
    parser.add_argument("--window", help="how much served traffic (default monitoring.drift.window)")
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="project root (data paths are relative to it)")
    parser.add_argument("--state-dir", type=Path, default=Path(os.environ.get("MLOPS_STATE_DIR", ".mlops")))
    parser.add_argument("--pushgateway", default=os.environ.get("PUSHGATEWAY_ADDRESS"),
                        help="push model_drift_score there (default $PUSHGATEWAY_ADDRESS)")
    args = parser.parse_args(argv)
    from rich.console import Console

    from framework.runtime.monitor.run import monitor, summary_lines
    from framework.runtime.resolved import load_resolved, run_entrypoint

    def body() -> int:
        recipe = load_resolved(args.resolved)[0]
        out = monitor(recipe, args.state_dir, args.root, current=args.current, window=args.window,
                      pushgateway=args.pushgateway, console=Console(stderr=True))
        print("\n".join(summary_lines(out)))
        return out.exit_code

    return run_entrypoint(body)


if __name__ == "__main__":
    sys.exit(main())
