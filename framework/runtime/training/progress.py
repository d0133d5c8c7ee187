"""Progress of the long steps of apply: a bar for training epochs and one for HPO trials.

On a terminal these are rich progress bars; elsewhere (CI logs, a RayJob's log) each
epoch or trial prints one line, which is what such logs can show.
"""

from __future__ import annotations

from typing import Any

_SHOWN = ("train_loss", "val_loss")


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


class _Bar:
    def __init__(self, console, total: int, description: str):
        self.console, self.total, self.description = console, total, description
        self.done = 0
        self._progress = None
        self._task = None

    def __enter__(self):
        if self.console.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                TextColumn("{task.fields[status]}"), console=self.console, transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task(self.description, total=self.total, status="")
        return self

    def _update(self, status: str, line: str) -> None:
        self.done += 1
        if self._progress is not None:
            self._progress.update(self._task, advance=1, status=status)
        else:
            self.console.print(line, highlight=False)

    def __exit__(self, *exc) -> bool:
        if self._progress is not None:
            self._progress.stop()
        return False


class EpochBar(_Bar):
    def __init__(self, console, epochs: int):
        super().__init__(console, epochs, "epochs")

    def advance(self, metrics: dict[str, Any]) -> None:
        extra = [k for k in sorted(metrics) if k.startswith("val_") and k not in _SHOWN]
        status = "  ".join(f"{k} {_fmt(metrics[k])}" for k in (*_SHOWN, *extra) if k in metrics)
        epoch = int(metrics.get("epoch", self.done)) + 1
        if self._progress is not None:  # resumed runs start past epoch 1
            self._progress.update(self._task, completed=epoch - 1)
            self.done = epoch - 1
        self._update(status, f"epoch {epoch}/{self.total}  {status}")


class TrialBar(_Bar):
    def __init__(self, console, trials: int, metric: str, direction: str):
        super().__init__(console, trials, "trials")
        self.metric, self.better = metric, max if direction == "maximize" else min
        self.best: float | None = None

    def advance(self, trial: dict[str, Any]) -> None:
        score = trial.get("score")
        if isinstance(score, (int, float)):
            self.best = score if self.best is None else self.better(self.best, score)
        best = "-" if self.best is None else _fmt(float(self.best))
        values = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in trial["values"].items())
        shown = "failed" if trial.get("status") == "FAILED" else f"{self.metric} {_fmt(score)}"
        self._update(f"best {self.metric} {best}",
                     f"trial {trial['trial']}/{self.total}  {shown}  ({values})  best {best}")
