"""The rollout's record and the registry moves that end a rollout.

Record: `<state_dir>/rollouts/<recipe>/<env>.json`, rewritten atomically (a hidden
file, then a rename) at the start, after each verdict and at the decision:

    {"recipe", "env", "registered_model", "model", "strategy", "champion", "candidate",
     "status": running | paused | promoted | rolled_back | inconclusive | unchanged,
     "step", "steps", "weight", "verdicts": [{step, weight, passed, reasons, candidate,
     champion, requests, at}], "decision": promote | rollback | inconclusive | null, "decided_by",
     "reasons", "requests", "started_at", "updated_at", "finished_at", "advance"}

Registry (MLflow aliases of the registered model): promote points `champion` at the
candidate (and clears `rejected` when it named it); roll back points `rejected` at the
candidate and leaves `champion` (and `candidate`) where they are, so a person can still
promote it by hand. A bandit whose evidence is inconclusive moves no alias: the champion
stays, and so does `candidate`, for a person to promote or roll back. Each also tags the
version `mlops.rollout` = promoted | rejected | inconclusive.
"""

from __future__ import annotations

import json
import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ALIAS_CHAMPION = "champion"
ALIAS_CANDIDATE = "candidate"
ALIAS_REJECTED = "rejected"
ALIASES = (ALIAS_CHAMPION, ALIAS_CANDIDATE, ALIAS_REJECTED)
TAG_ROLLOUT = "mlops.rollout"


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def state_path(state_dir: Path, recipe_name: str, env: str) -> Path:
    safe = lambda s: re.sub(r"[^A-Za-z0-9_.-]", "_", s)  # noqa: E731 - names are DNS-like already
    return Path(state_dir) / "rollouts" / safe(recipe_name) / f"{safe(env)}.json"


def read_state(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return None  # a damaged record is replaced by the next rollout


def write_state(path: Path, state: dict[str, Any]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state["updated_at"] = now()
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(partial, path)


# --- registry -------------------------------------------------------------------------
def aliases(name: str, *, uri: str) -> dict[str, str | None]:
    """{champion, candidate, rejected: version or None}; all None without a store."""
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).is_file():
        return {alias: None for alias in ALIASES}  # no store yet: don't create one
    from framework.runtime import tracking

    return {alias: tracking.alias_version(name, alias, uri=uri) for alias in ALIASES}


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
    "state_path", "read_state", "write_state", "now", "aliases", "promote_version", "reject_version", "mark_inconclusive",
    "ALIAS_CHAMPION", "ALIAS_CANDIDATE", "ALIAS_REJECTED", "TAG_ROLLOUT",
]


def record_manual(path: Path, recipe, champion: str | None, candidate: str, action: str) -> dict[str, Any]:
    """Record a decision taken by hand (`mlops rollout promote|rollback`) in the rollout's
    state file: the existing record when it is about this candidate, else a new one."""
    record = read_state(path)
    if record is None or record.get("candidate") != candidate:
        record = {
            "recipe": recipe.name, "env": recipe.environment, "registered_model": recipe.registered_model,
            "strategy": recipe.rollout.strategy, "champion": champion, "candidate": candidate,
            "step": 0, "steps": list(getattr(recipe.rollout, "steps", []) or []), "weight": 0.0,
            "verdicts": [], "requests": 0, "started_at": now(),
        }
    promoted = action == "promote"
    record.update(
        status="promoted" if promoted else "rolled_back",
        decision=action,
        decided_by=f"mlops rollout {action}",
        weight=100.0 if promoted else 0.0,
        reasons=[f"{'promoted' if promoted else 'rolled back'} by hand"],
        finished_at=now(),
    )
    write_state(path, record)
    return record


def verdict_text(passed: bool | None, reasons: list[str]) -> str:
    """'passed|failed|inconclusive: reason; reason', the outcome not repeated when the
    first reason names it already (a bandit's 'inconclusive: P(...) ...')."""
    outcome = {True: "passed", False: "failed", None: "inconclusive"}[passed]
    text = "; ".join(reasons)
    return text if text.startswith(f"{outcome}:") else f"{outcome}: {text}"


def describe(record: dict[str, Any] | None) -> list[str]:
    """`mlops rollout status` lines for a state file's record."""
    if record is None:
        return ["rollout:   none recorded"]
    strategy, status = record.get("strategy", "?"), record.get("status", "?")
    weight = f"candidate weight {float(record.get('weight') or 0.0):g}%"
    steps = record.get("steps") or []
    if strategy == "canary" and steps:
        where = f"step {record.get('step', 0)} of {len(steps)}, {weight}"
    else:
        where = weight
    lines = [f"rollout:   {strategy}, {where}, {status}"]
    verdicts = record.get("verdicts") or []
    if verdicts:
        last = verdicts[-1]
        lines.append(f"verdict:   step {last.get('step')} {verdict_text(last.get('passed'), last.get('reasons') or [])}")
    else:
        lines.append("verdict:   none")
    if record.get("decision"):
        lines.append(f"decision:  {record['decision']} by {record.get('decided_by')} at {record.get('finished_at')}")
        if record["decision"] == "inconclusive":
            lines.append("           the champion stays; `mlops rollout promote|rollback` decides by hand")
    else:
        lines.append("decision:  none yet")
    return lines
