"""One drift check, as `mlops monitor` and the generated CronJob run it: the champion's
reference (reference.py) against the current data (current.py), scored by drift.py,
reported by report.py, acted on by actions.py. Exit code 0 without drift, 3 with it
(1: something could not be compared, with the reason)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from framework.contracts.entrypoints import DRIFT_EXIT_CODE as EXIT_DRIFT
from framework.errors import MlopsError, Problem


@dataclass
class MonitorResult:
    recipe: str
    env: str
    drifted: bool
    summary: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)
    run_id: str | None = None
    action: str = "none"  # none | alert | retrained | dispatched | retrain failed
    action_detail: list[str] = field(default_factory=list)
    result: Any = None  # drift.DriftResult

    @property
    def exit_code(self) -> int:
        return EXIT_DRIFT if self.drifted else 0


def monitor(
    recipe,
    state_dir: Path,
    root: Path,
    *,
    current: Path | None = None,
    window: str | None = None,
    pushgateway: str | None = None,
    retrain: bool = True,
    console=None,
    now: float | None = None,
    log_to_mlflow: bool = True,
) -> MonitorResult:
    from framework.recipe.types import duration_seconds
    from framework.runtime.monitor import actions, report
    from framework.runtime.monitor import current as current_data
    from framework.runtime.training import reference as references
    from framework.runtime.monitor.drift import detect

    settings = recipe.monitoring.drift
    if settings is None:
        raise MlopsError([Problem(None, "monitoring.drift", f"{recipe.name} has no monitoring.drift section: drift checks are off")])
    if pushgateway:
        report.check_address(pushgateway)
    state_dir = Path(state_dir).resolve()
    say = (lambda line: console.print(line, markup=False, highlight=False)) if console is not None else (lambda line: None)
    began = time.perf_counter()
    ref = references.load(recipe, state_dir)
    loaded = time.perf_counter()
    if current is not None:
        cur = current_data.from_file(Path(current), ref, recipe, state_dir)
    else:
        cur = current_data.from_request_log(recipe, state_dir, ref, duration_seconds(window or settings.window), now)
    read = time.perf_counter()
    rows = len(cur.frame)
    if rows < settings.min_rows:
        raise MlopsError([Problem(None, "monitoring.drift.min_rows", (
            f"only {rows} current rows ({cur.source}); a decision needs at least {settings.min_rows}: "
            "wait for more traffic, widen --window, or lower monitoring.drift.min_rows"))])
    prediction = [c for c in ref.prediction if c in cur.frame and cur.frame[c].notna().sum() >= settings.min_rows]
    result = detect(ref.frame, cur.frame, numeric=ref.numeric, categorical=ref.categorical, prediction=prediction,
                    method=settings.method, threshold=settings.threshold, html=True)
    detected = time.perf_counter()
    stamp = datetime.fromtimestamp(now or time.time(), timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    summary = {
        "recipe": recipe.name, "env": recipe.environment, "registered_model": recipe.registered_model,
        "checked_at": stamp, "method": result.method, "threshold": result.threshold,
        "drifted": bool(result.drifted), "overall": result.overall, "band": result.band,
        "reference": {"version": ref.version, "run_id": ref.run_id, "rows": int(len(ref.frame))},
        "current": {"source": cur.source, "rows": rows, "notes": cur.notes, "labelled": cur.labelled},
        **{k: v for k, v in result.to_json().items() if k in ("columns", "evaluated_rows", "evidently_summary")},
        "timings_s": {"reference": round(loaded - began, 3), "current": round(read - loaded, 3),
                      **{k: round(v, 3) for k, v in result.timings.items()}, "decision": round(detected - began, 3)},
        "on_drift": settings.on_drift,
    }
    folder = state_dir / "reports" / recipe.name / recipe.environment / stamp
    files = report.write(folder, result, summary, recipe.registered_model)
    out = MonitorResult(recipe.name, recipe.environment, bool(result.drifted), summary, files, result=result)
    if console is not None:
        console.print(report.table(result, f"drift of {cur.source} vs the reference of version {ref.version} "
                                           f"({result.method}, threshold {result.threshold:g})"))
    for note in cur.notes:
        say(f"  {note}")
    if pushgateway:
        report.push(pushgateway, result, recipe.registered_model, recipe.deploy.namespace)
        say(f"pushed model_drift_score to {pushgateway}")
    if log_to_mlflow:
        out.run_id = report.log_run(recipe, state_dir, summary, files)
    if result.drifted:
        if settings.on_drift == "retrain" and retrain:
            out.action, out.action_detail = actions.retrain(recipe, state_dir, root, cur, console=console)
        else:
            out.action = "alert"
            out.action_detail = [f"the PrometheusRule alert on {recipe.registered_model}'s model_drift_score fires "
                                 f"(> {settings.threshold:g}) once the gauge is scraped"]
    return out


def summary_lines(out: MonitorResult) -> list[str]:
    s = out.summary
    verdict = "DRIFT" if out.drifted else "no drift"
    drifted = [c["column"] for c in s["columns"] if c["drifted"]]
    lines = [
        f"{s['recipe']} ({s['env']}): {verdict}: {s['method']} overall {s['overall']:.3f} "
        f"(threshold {s['threshold']:g}), {len(drifted)} of {len(s['columns'])} columns drifted"
        + (f": {', '.join(drifted)}" if drifted else ""),
        f"  decision in {s['timings_s']['decision']:.1f} s on {s['current']['rows']} current rows",
        f"  report: {out.files.get('html', out.files.get('json'))}",
        f"  gauges: {out.files['prom']}",
    ]
    if out.run_id:
        lines.append(f"  MLflow run {out.run_id}")
    if out.drifted:
        lines += [f"  on_drift {s['on_drift']}: {out.action}"] + [f"  {d}" for d in out.action_detail]
    return lines


__all__ = ["monitor", "MonitorResult", "summary_lines", "EXIT_DRIFT"]
