"""The rollout's record and the registry moves that end a rollout.

Record: `<state_dir>/rollouts/<recipe>/<env>.json`, a `record.RolloutRecord` (its JSON
Schema: schemas/runtime/rollout-record.schema.json), rewritten atomically (a hidden
file, then a rename) at the start, after each verdict and at the decision:

    {"schema_version": 1, "recipe", "env", "registered_model", "model", "strategy",
     "champion", "candidate",
     "status": running | paused | promoted | rolled_back | inconclusive | unchanged,
     "step", "steps", "weight", "verdicts": [{step, weight, passed, reasons, candidate,
     champion, requests, at}], "decision": promote | rollback | inconclusive | null, "decided_by",
     "reasons", "requests", "started_at", "updated_at", "finished_at", "advance"}

`read_record` reads it back through the model: a record that does not validate is an
MlopsError naming the file (`mlops rollout status`, `mlops serve`); a rollout does not
read the old record, it writes a new one, and a decision by hand replaces a record it
cannot read (the aliases have moved by then). A record written before schema_version
is read as version 1 (record.py says how).

Registry (MLflow aliases of the registered model): promote points `champion` at the
candidate (and clears `rejected` when it named it); roll back points `rejected` at the
candidate and leaves `champion` (and `candidate`) where they are, so a person can still
promote it by hand. A bandit whose evidence is inconclusive moves no alias: the champion
stays, and so does `candidate`, for a person to promote or roll back. Each also tags the
version `mlops.rollout` = promoted | rejected | inconclusive.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from framework.contracts.registry import ALIAS_CANDIDATE, ALIAS_CHAMPION, ALIAS_REJECTED
from framework.contracts.rollout_record import RolloutRecord, dump_record, load_record, new_record, now, parse_record
from framework.contracts.rollout_record import record_path as state_path
from framework.errors import MlopsError
from framework.runtime.tracking import aliases

TAG_ROLLOUT = "mlops.rollout"


def read_record(path: Path) -> RolloutRecord | None:
    """The record in `path`, validated; None when there is none; MlopsError (one line
    naming the file) when it does not validate."""
    return load_record(Path(path))


def read_state(path: Path) -> dict[str, Any] | None:
    """The record in `path` as plain JSON data (what `api.rollout_status` returns),
    read through the model: None when there is none, MlopsError when it does not validate."""
    record = read_record(path)
    return None if record is None else record.model_dump(mode="json")


def write_state(path: Path, record: RolloutRecord) -> None:
    """Stamp `updated_at` and write the record atomically, as deterministic JSON."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    record.updated_at = now()
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(dump_record(record), encoding="utf-8")
    os.replace(partial, path)


# --- registry -------------------------------------------------------------------------
def promote_version(name: str, version: str, *, uri: str) -> None:
    """`champion` -> version (the version's `rejected` alias, if any, is cleared)."""
    from framework.runtime import tracking

    client = tracking.client(uri)
    tracking.set_alias(name, ALIAS_CHAMPION, version, uri=uri)
    if tracking.alias_version(name, ALIAS_REJECTED, uri=uri) == str(version):
        client.delete_registered_model_alias(name, ALIAS_REJECTED)
    client.set_model_version_tag(name, str(version), TAG_ROLLOUT, "promoted")


def reject_version(name: str, version: str, *, uri: str) -> None:
    """`rejected` -> version; champion stays."""
    from framework.runtime import tracking

    tracking.set_alias(name, ALIAS_REJECTED, version, uri=uri)
    tracking.client(uri).set_model_version_tag(name, str(version), TAG_ROLLOUT, "rejected")


def mark_inconclusive(name: str, version: str, *, uri: str) -> None:
    """Tag only: the aliases stay where they are."""
    from framework.runtime import tracking

    tracking.client(uri).set_model_version_tag(name, str(version), TAG_ROLLOUT, "inconclusive")


__all__ = [
    "state_path", "read_record", "read_state", "write_state", "now", "record_manual", "describe", "verdict_text", "aliases", "promote_version", "reject_version", "mark_inconclusive",
    "ALIAS_CHAMPION", "ALIAS_CANDIDATE", "ALIAS_REJECTED", "TAG_ROLLOUT",
]


def record_manual(path: Path, recipe, champion: str | None, candidate: str, action: str) -> RolloutRecord:
    """Record a decision taken by hand (`mlops rollout promote|rollback`) in the rollout's
    state file: the existing record when it is about this candidate, else a new one (also
    in place of a record that does not validate: the aliases have moved already)."""
    try:
        record = read_record(path)
    except MlopsError:
        record = None
    if record is None or record.candidate != str(candidate):
        record = new_record(recipe, champion=champion, candidate=candidate)
    promoted = action == "promote"
    record.status = "promoted" if promoted else "rolled_back"
    record.decision = action
    record.decided_by = f"mlops rollout {action}"
    record.weight = 100.0 if promoted else 0.0
    record.reasons = [f"{'promoted' if promoted else 'rolled back'} by hand"]
    record.finished_at = now()
    write_state(path, record)
    return record


def verdict_text(passed: bool | None, reasons: list[str]) -> str:
    """'passed|failed|inconclusive: reason; reason', the outcome not repeated when the
    first reason names it already (a bandit's 'inconclusive: P(...) ...')."""
    outcome = {True: "passed", False: "failed", None: "inconclusive"}[passed]
    text = "; ".join(reasons)
    return text if text.startswith(f"{outcome}:") else f"{outcome}: {text}"


def describe(record: RolloutRecord | Mapping[str, Any] | None, source: Path | str = "rollout record") -> list[str]:
    """`mlops rollout status` lines for a state file's record (the model, or its JSON
    data as `read_state` gives it)."""
    if record is None:
        return ["rollout:   none recorded"]
    if not isinstance(record, RolloutRecord):
        record = parse_record(dict(record), source)
    weight = f"candidate weight {record.weight:g}%"
    if record.strategy == "canary" and record.steps:
        where = f"step {record.step} of {len(record.steps)}, {weight}"
    else:
        where = weight
    lines = [f"rollout:   {record.strategy}, {where}, {record.status}"]
    if record.verdicts:
        last = record.verdicts[-1]
        lines.append(f"verdict:   step {last.step} {verdict_text(last.passed, last.reasons)}")
    else:
        lines.append("verdict:   none")
    if record.decision:
        lines.append(f"decision:  {record.decision} by {record.decided_by} at {record.finished_at}")
        if record.decision == "inconclusive":
            lines.append("           the champion stays; `mlops rollout promote|rollback` decides by hand")
    else:
        lines.append("decision:  none yet")
    return lines
