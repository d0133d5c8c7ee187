"""The API of `mlops batch`: score a table offline with a registered version of the
recipe's model.
Here on an embedded Ray Data or on Spark (framework.runtime.batch.run), or as a job on
a Ray cluster (framework.runtime.batch.cluster, after generate writes the resolved
recipe the job reads). Returns a `BatchRun` around the runtime's BatchResult (the rows,
the parts, the model version, the seconds) or raises an `MlopsError`; nothing here
prints.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from framework.api.generate import generate
from framework.api.recipes import as_project, load_recipe
from framework.api.results_ci import BatchRun
from framework.errors import MlopsError, Problem
from framework.project import Project


def batch(recipe: str, input_uri: str, output_uri: str, env: str | None = None, version: str | None = None,
          alias: str | None = None, overwrite: bool = False, project: Project | Path | None = None, console: Any = None,
          engine: str = "ray", master: str | None = None, address: str | None = None,
          head_shares_disk: bool = False) -> BatchRun:
    """Score `input_uri` (a csv/parquet file or folder) with a registered version of the
    recipe's model (default: the champion) on an embedded Ray Data (engine "ray") or on
    Spark (engine "spark", `master` default local[*]), or as a job on the Ray cluster at
    `address`; write parquet parts, a manifest and the model's name and version to
    `output_uri`."""
    proj = as_project(project)
    r = load_recipe(recipe, env, (), proj).recipe
    if address is None:
        from framework.runtime.batch.run import run_batch

        return BatchRun(run_batch(r, proj.root, proj.state_dir, input_uri, output_uri, version=version, alias=alias,
                                  overwrite=overwrite, engine=engine, master=master, console=console))
    if engine != "ray" or master is not None:
        raise MlopsError([Problem(None, "--address", "runs the batch job on a Ray cluster: it takes --engine ray "
                                  "(without --master)")])
    from framework.runtime.batch.cluster import batch_on_cluster
    from framework.runtime.batch.parts import read_result

    began = time.perf_counter()
    generate([recipe], env=env, project=proj)  # the job reads the resolved recipe generate writes
    batch_on_cluster(r, proj.root, proj.generated_dir / r.name / r.environment, proj.state_dir, input_uri, output_uri,
                     address, version=version, alias=alias, overwrite=overwrite, head_shares_disk=head_shares_disk)
    result = read_result(output_uri)
    result.seconds = time.perf_counter() - began
    return BatchRun(result)
