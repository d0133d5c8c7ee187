"""What a drift check leaves behind: the terminal table, files under
`<state_dir>/reports/<recipe>/<env>/<UTC stamp>/` (drift.json, drift.html, drift.prom),
an MLflow run, and the `model_drift_score{model, feature}` gauges (contracts/metrics.py:
DRIFT_SCORE, `feature="__overall__"` the dataset's score) as a Prometheus text file and,
with a Pushgateway address, pushed under the grouping key the generated PrometheusRule
and dashboard select (job, namespace, model).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from framework.contracts.metrics import DRIFT_JOB, DRIFT_SCORE, OVERALL_FEATURE
from framework.errors import MlopsError, Problem


def table(result, title: str):
    from rich.table import Table

    out = Table(title=title, title_justify="left")
    for heading, justify in (("column", "left"), ("kind", "left"), ("score", "right"), ("PSI", "right"),
                             ("band", "left"), ("evidently", "right"), ("drift", "left"), ("change", "left")):
        out.add_column(heading, justify=justify)
    for column in result.columns:
        kind = "prediction" if getattr(column, "prediction", False) else column.kind
        evidently = "" if column.evidently_score is None else f"{column.evidently_score:.3f} ({column.evidently_test})"
        if column.kind == "numeric" and column.reference_mean is not None and column.current_mean is not None:
            change = (f"mean {column.reference_mean:.3g} -> {column.current_mean:.3g}, "
                      f"sd {column.reference_std:.3g} -> {column.current_std:.3g}")
        else:
            change = column.top_change or ""
        out.add_row(column.column, kind, f"{column.score:.3f}", f"{column.psi:.3f}", column.band, evidently,
                    "[red]DRIFT[/]" if column.drifted else "ok", change)
    return out


def gauges(result, model: str):
    """A registry holding model_drift_score for every column and the dataset."""
    from prometheus_client import CollectorRegistry, Gauge

    registry = CollectorRegistry()
    gauge = Gauge(DRIFT_SCORE.name, DRIFT_SCORE.help, DRIFT_SCORE.labels, registry=registry)
    for column in result.columns:
        gauge.labels(model, column.column).set(column.score)
    gauge.labels(model, OVERALL_FEATURE).set(result.overall)
    return registry


def write(folder: Path, result, summary: dict, model: str) -> dict[str, Path]:
    """drift.json, drift.html (evidently's report, when it ran) and drift.prom."""
    from prometheus_client import write_to_textfile

    folder.mkdir(parents=True, exist_ok=True)
    paths = {"json": folder / "drift.json", "prom": folder / "drift.prom"}
    _atomic(paths["json"], json.dumps(summary, indent=2, sort_keys=True, allow_nan=False) + "\n")
    if result.html:
        paths["html"] = folder / "drift.html"
        _atomic(paths["html"], result.html)
    write_to_textfile(str(paths["prom"]), gauges(result, model))  # writes a temporary file, then renames
    return paths


def _atomic(path: Path, text: str) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def check_address(address: str) -> None:
    """One error line, before any work, for a Pushgateway address that is no http(s) URL."""
    from urllib.parse import urlparse

    try:
        parts = urlparse(address if "://" in address else f"http://{address}")  # push_to_gateway's default scheme
        ok = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # reading .port raises on a port that is no number
        ok = False
    if not ok or any(c.isspace() for c in address):
        raise _cannot_push(address, "not an http(s) URL")


def push(address: str, result, model: str, namespace: str) -> None:
    """The gauges to a Pushgateway (replacing the previous push of this grouping key); one
    error line saying why when it cannot (no alert could fire on these scores)."""
    from urllib.error import HTTPError, URLError

    from prometheus_client import push_to_gateway

    try:
        push_to_gateway(address, job=DRIFT_JOB, registry=gauges(result, model),
                        grouping_key={"namespace": namespace, "model": model}, timeout=10)
        return
    except HTTPError as error:  # something answered, but refused the push (or is no Pushgateway)
        body = error.read().decode("utf-8", "replace").strip().splitlines()
        reason = f"HTTP {error.code} {error.reason}" + (f": {body[0][:200]}" if body else "")
    except URLError as error:  # nothing answered: refused, unknown host
        reason = getattr(error.reason, "strerror", None) or str(error.reason)
    except OSError as error:  # a timeout
        reason = error.strerror or str(error)
    raise _cannot_push(address, reason)


def _cannot_push(address: str, reason: str) -> MlopsError:
    return MlopsError([Problem(None, "--pushgateway", f"cannot push {DRIFT_SCORE.name} to {address}: {reason}")])


def log_run(recipe, state_dir: Path, summary: dict, paths: dict[str, Path]) -> str:
    """A `monitor` run in the recipe's experiment: scores as metrics, the files as artifacts."""
    from framework.runtime import tracking

    with tracking.Tracker(recipe, state_dir, run_name=f"monitor-{summary['checked_at']}") as run:
        run.set_tags({"mlops.kind": "monitor", "mlops.drift": "drift" if summary["drifted"] else "none",
                      "mlops.reference_version": str(summary["reference"]["version"])})
        metrics = {"drift_overall": summary["overall"], "current_rows": summary["current"]["rows"]}
        for column in summary["columns"]:
            metrics[f"drift_{_metric_key(column['column'])}"] = column["score"]
        run.log_metrics(0, metrics)
        for path in paths.values():
            run.log_artifact_file(path, "drift")
        return run.run_id


def _metric_key(name: str) -> str:
    return "".join(c if c.isalnum() or c in "_-./ " else "_" for c in name)


__all__ = ["table", "gauges", "write", "check_address", "push", "log_run"]
