"""`mlops`: a thin command line over framework.api (each command parses, calls, and
hands the result to common.finish, which prints it and exits with its code).
The commands are grouped in modules: recipes.py (validate, show, schema, generate,
plan), run.py (apply, serve, monitor, batch), pipeline.py (check-data, evaluate, gate,
smoke) and rollout.py (the `rollout` sub-app); importing them registers them on `app`,
in the order `mlops --help` lists them. Heavy modules load inside commands, so
`mlops --help` stays fast.
"""

from __future__ import annotations

import os

from framework.cli.common import app

# Importing a command module registers its commands on `app`: in this order in --help.
import framework.cli.recipes  # noqa: E402, F401  isort: skip
import framework.cli.run  # noqa: E402, F401  isort: skip
import framework.cli.pipeline  # noqa: E402, F401  isort: skip
import framework.cli.rollout  # noqa: E402, F401  isort: skip

__all__ = ["app", "main"]


def main() -> None:
    # pydantic scans every installed distribution for plugins on first use (~25 ms of
    # start-up); the CLI uses none. A user can still enable them by setting the variable.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    app()
