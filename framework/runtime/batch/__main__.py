"""`python -m framework.runtime.batch RESOLVED --input URI --output URI [--alias A | --version N]`:
the batch RayJob's entrypoint (ray/batch-rayjob.yaml), the same scoring as `mlops batch`
on the cluster of the job (RAY_ADDRESS, which Ray sets for a job's driver). Exit 0 done,
1 error."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m framework.runtime.batch", description=__doc__.splitlines()[0])
    parser.add_argument("resolved", type=Path, help="recipe.resolved.yaml written by `mlops generate`")
    parser.add_argument("--input", required=True, help="a csv/parquet file or folder (path, file://, s3://, gs://)")
    parser.add_argument("--output", required=True, help="folder of the scored parquet parts (path or URI)")
    parser.add_argument("--alias", help="registry alias to score with (default champion)")
    parser.add_argument("--version", help="registered version to score with")
    parser.add_argument("--overwrite", action="store_true", help="replace what --output holds")
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="project root (relative paths resolve there)")
    parser.add_argument("--state-dir", type=Path, default=Path(os.environ.get("MLOPS_STATE_DIR", ".mlops")))
    parser.add_argument("--ray-address", default=os.environ.get("RAY_ADDRESS"),
                        help="Ray cluster (default $RAY_ADDRESS, set in a Ray job's driver); else an embedded Ray")
    args = parser.parse_args(argv)
    from rich.console import Console

    from framework.runtime.batch.run import run_batch
    from framework.runtime.resolved import load_resolved, run_entrypoint

    console = Console(stderr=True)

    def body() -> int:
        recipe = load_resolved(args.resolved)[0]
        result = run_batch(recipe, args.root, args.state_dir, args.input, args.output, version=args.version,
                           alias=args.alias, overwrite=args.overwrite, console=console, address=args.ray_address)
        print(f"{result.rows} rows scored by {result.model} version {result.version} in {result.seconds:.1f} s: "
              f"{result.output} ({len(result.parts)} part(s))", flush=True)
        return 0

    return run_entrypoint(body)


if __name__ == "__main__":
    sys.exit(main())
