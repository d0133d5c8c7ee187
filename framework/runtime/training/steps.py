"""The steps of a training apply: a heading in the terminal, and any unexpected error
turned into one line that names the step and what to do, its traceback kept in a file."""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from framework.errors import MlopsError, Problem

# What a user can do when a step fails for a reason the framework did not foresee.
HINTS = {
    "data": "check data.source and the file it names",
    "teacher": "check training.distillation.teacher and that the tracking server is reachable",
    "hyper-parameter search": "see the trials' errors above; fix training.hpo.search_space or the recipe and apply again",
    "training on Ray": "see the worker errors above; fix and apply again (it resumes from the last checkpoint)",
    "evaluation and export": "check the model and evaluation sections; the trained weights are kept in the Ray checkpoint",
    "registry": "check tracking.uri and that the MLflow store is reachable and writable",
}


@contextmanager
def step(name: str, console, log_dir: Path | None) -> Iterator[None]:
    console.rule(name)
    try:
        yield
    except (MlopsError, KeyboardInterrupt):
        raise
    except Exception as error:  # noqa: BLE001 - reported as a step failure below
        where = ""
        if log_dir is not None:
            log_dir.mkdir(parents=True, exist_ok=True)
            log = log_dir / "error.log"
            log.write_text("".join(traceback.format_exception(error)), encoding="utf-8")
            where = f" (traceback in {log})"
        message = f"{name} failed: {type(error).__name__}: {_first_line(error)}; {HINTS.get(name, 'see the log above')}{where}"
        raise MlopsError([Problem(None, "apply", message)]) from error


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else "no message"
