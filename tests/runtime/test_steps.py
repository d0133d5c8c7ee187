"""A step that fails unexpectedly is reported as one line naming it and what to do."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from framework.errors import MlopsError
from framework.runtime.training.steps import step


def test_an_unexpected_error_names_the_step_the_remedy_and_keeps_the_traceback(tmp_path: Path) -> None:
    console = Console(file=open(tmp_path / "out.txt", "w"), width=80)
    with pytest.raises(MlopsError) as caught:
        with step("training on Ray", console, tmp_path / "run"):
            raise RuntimeError("worker 1 died\nmore detail")
    (problem,) = caught.value.problems
    assert str(problem) == (
        "apply: training on Ray failed: RuntimeError: worker 1 died; see the worker errors above; fix and apply "
        f"again (it resumes from the last checkpoint) (traceback in {tmp_path / 'run' / 'error.log'})"
    )
    assert "RuntimeError: worker 1 died" in (tmp_path / "run" / "error.log").read_text()


@pytest.mark.parametrize("error", [MlopsError("data.source: no such file"), KeyboardInterrupt()])
def test_known_errors_and_ctrl_c_pass_through_unchanged(tmp_path: Path, error: BaseException) -> None:
    console = Console(file=open(tmp_path / "out.txt", "w"), width=80)
    with pytest.raises(type(error)) as caught:
        with step("data", console, tmp_path):
            raise error
    assert caught.value is error
    assert not (tmp_path / "error.log").exists()
