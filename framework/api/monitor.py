"""The API of `mlops monitor`: drift of served traffic (or of a file) against the
training reference of the registry's champion.
The check itself is framework.runtime.monitor.run (Evidently or PSI per column, the
report, the Pushgateway gauge, the on_drift action); this module loads the recipe,
refuses recipes without a drift reference, resolves the `current` path and wraps the
outcome in a `MonitorRun` (exit 0 no drift, 3 drift). Nothing here prints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from framework.api.recipes import as_project, load_recipe
from framework.api.results_ci import MonitorRun
from framework.errors import MlopsError, Problem
from framework.project import Project


def monitor(
    recipe: str,
    env: str | None = None,
    current: Path | str | None = None,
    window: str | None = None,
    pushgateway: str | None = None,
    project: Project | Path | None = None,
    console: Any = None,
) -> MonitorRun:
    """Drift of served traffic (the request log of `window`, default monitoring.drift.window)
    or of the `current` file against the champion's training reference; returns a
    MonitorRun around framework.runtime.monitor.run.MonitorResult (exit_code 0 or 3)."""
    proj = as_project(project)
    r = load_recipe(recipe, env, (), proj).recipe
    if r.model.kind != "tabular":  # only a tabular training records a drift reference
        raise MlopsError([Problem(None, "model.kind", f"mlops monitor checks tabular models; {r.name} is {r.model.kind}")])
    from framework.runtime.monitor.run import monitor as run_monitor

    path = None if current is None else Path(current)
    if path is not None and not path.is_absolute():
        path = Path.cwd() / path
    return MonitorRun(run_monitor(r, proj.state_dir, proj.root, current=path, window=window, pushgateway=pushgateway,
                                  console=console))
