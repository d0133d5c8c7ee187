"""`mlops`: a thin command line over framework.api (each command parses, calls, and
hands the result to common.finish, which prints it and exits with its code).
The commands are grouped in modules: recipes.py (validate, show, schema, generate,
plan), run.py (apply, serve, monitor, batch), pipeline.py (check-data, evaluate, gate,
smoke) and rollout.py (the `rollout` sub-app); importing them registers them on `app`,
in the order `mlops --help` lists them. Heavy modules load inside commands, so
`mlops --help` stays fast; a plain `validate` or `generate` skips typer (fast.py).
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

# Importing a command module registers its commands on `app`: in this order in --help.
COMMAND_MODULES = ("recipes", "run", "pipeline", "rollout")

__all__ = ["app", "main"]


def main() -> None:
    # pydantic scans every installed distribution for plugins on first use (~25 ms of
    # start-up); the CLI uses none. A user can still enable them by setting the variable.
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    from framework.cli.fast import answer

    code = answer(sys.argv[1:])
    if code is not None:
        sys.exit(code)
    _app()()


def _app() -> Any:
    from framework.cli.common import app

    for name in COMMAND_MODULES:
        importlib.import_module(f"framework.cli.{name}")
    return app


def __getattr__(name: str) -> Any:
    if name == "app":  # typer's app, with every command registered
        return _app()
    raise AttributeError(f"module 'framework.cli' has no attribute '{name}'")
