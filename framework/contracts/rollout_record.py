"""The rollout record: the typed form of `<state_dir>/rollouts/<recipe>/<env>.json`,
which a rollout writes (controller.py, state.record_manual) and `mlops rollout status`,
`mlops serve` and the Ray cluster's serving plan read (state.py, live.py).

* `new_record` is the one place a record is built; the controller, the records of a
  rollout that had nothing to walk (no champion yet, candidate already champion) and
  the decisions taken by hand all start from it.
* `dump_record` is the file's text: the model as JSON, keys sorted, two-space indent,
  a final newline, so the same record is the same bytes.
* `parse_record` / `load_record` read it back through the model; a record that does
  not validate is an `MlopsError` of one line naming the file, never a traceback.
* The JSON Schema, `schemas/runtime/rollout-record.schema.json`, is exported by
  `mlops schema` (framework/recipe/schema.py) from `RolloutRecord`.

Versions. `schema_version` is 1. A record written before the field existed (no
`schema_version` key) is read as version 1 when it otherwise validates: those records
have the same keys and values, except that the decisions by hand and the rollouts with
nothing to walk left out `model` (and the former `advance`), which read as null. Any
other difference refuses it, as does a `schema_version` other than 1 (a newer mlops
wrote it); the message names the file and says to remove it (the next rollout writes
a new record).

Nothing here imports numpy, mlflow or the serving modules.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from framework.errors import Location, MlopsError, Problem

if TYPE_CHECKING:
    from framework.runtime.serving.stats import Stats

SCHEMA_VERSION = 1
SCHEMA_PATH = "runtime/rollout-record.schema.json"  # under the project's schemas dir
ADVANCE = "local: steps advance by request counts (analysis.min_requests per step), not by the recipe's durations"
LEGACY_OPTIONAL = ("model", "advance")  # keys a record without schema_version may lack (read as null)

Strategy = Literal["direct", "canary", "shadow", "bandit", "blue_green"]
Status = Literal["running", "paused", "promoted", "rolled_back", "inconclusive", "unchanged"]
Decision = Literal["promote", "rollback", "inconclusive"]
DecidedBy = Literal["controller", "mlops rollout promote", "mlops rollout rollback"]
Timestamp = Annotated[str, Field(pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$",
                                 description="UTC, to the second: YYYY-MM-DDTHH:MM:SSZ.")]
Count = Annotated[int, Field(ge=0)]
Percent = Annotated[float, Field(ge=0.0, le=100.0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class WindowStats(_Strict):
    """One version's counters over one analysis window (stats.Stats.to_dict)."""

    version: str = Field(description="The model version these counters are about.")
    requests: Count = Field(description="Requests the version served in the window.")
    errors: Count = Field(description="Of those, answers with a 5xx status.")
    error_rate: float = Field(ge=0.0, le=1.0, description="errors / requests (0 without requests), 6 decimals.")
    p50_ms: float | None = Field(description="Median latency in ms, 3 decimals; null without requests.")
    p99_ms: float | None = Field(description="99th percentile latency in ms, 3 decimals; null without requests.")
    compared: Count = Field(description="Shadow: mirrored requests both versions answered.")
    agreed: Count = Field(description="Shadow: of those, the requests where both answers agree.")
    agreement: float | None = Field(ge=0.0, le=1.0, description="Shadow: agreed / compared, 6 decimals; null when nothing was compared.")
    delta_p50_ms: float | None = Field(description="Shadow: median of (candidate - champion) inference time in ms; null otherwise.")

    @classmethod
    def of(cls, stats: Stats) -> WindowStats:
        return cls.model_validate(stats.to_dict())


class StepVerdict(_Strict):
    """The analysis of one step (one traffic window) of the rollout."""

    step: Count = Field(description="The step number, from 1 (canary: the index into steps; other strategies: 1).")
    weight: Percent = Field(description="The candidate's share of traffic in the step, percent.")
    passed: bool | None = Field(description="true: the analysis passed; false: it failed; null: inconclusive.")
    reasons: list[str] = Field(description="The checks behind the verdict, one line each.")
    candidate: WindowStats = Field(description="The candidate's counters over the step's window.")
    champion: WindowStats = Field(description="The champion's counters over the step's window.")
    requests: Count = Field(description="Synthetic requests the rollout had sent when the step was judged.")
    at: Timestamp = Field(description="When the step was judged.")


class RolloutRecord(_Strict):
    """The record of the latest rollout of a recipe in one environment
    (`.mlops/rollouts/<recipe>/<env>.json`), rewritten at the start, after each verdict
    and at the decision."""

    schema_version: Literal[1] = Field(description="The record's format version.")
    recipe: str = Field(description="The recipe's name.")
    env: str = Field(description="The recipe's environment.")
    registered_model: str = Field(description="The MLflow registered model whose aliases the rollout moves.")
    model: str | None = Field(description="The served model name the rollout's traffic went to; null for a "
                                          "decision by hand with no earlier record.")
    strategy: Strategy = Field(description="rollout.strategy of the recipe.")
    champion: str | None = Field(description="The champion version when the rollout started; null when there was none.")
    candidate: str = Field(description="The candidate version rolled out.")
    status: Status = Field(description="running, paused (a blue/green preview waits for `mlops rollout promote`), "
                                       "promoted, rolled_back, inconclusive (the champion stays) or unchanged "
                                       "(the candidate already was the champion).")
    step: Count = Field(description="The current step (canary: 1..len(steps)); 0 before the first.")
    steps: list[Annotated[int, Field(ge=1, le=100)]] = Field(description="rollout.steps (canary weights, percent); "
                                                                         "empty for other strategies.")
    weight: Percent = Field(description="The candidate's current share of traffic, percent.")
    verdicts: list[StepVerdict] = Field(description="The analysis of each step so far, in order.")
    decision: Decision | None = Field(description="promote, rollback or inconclusive; null while undecided.")
    decided_by: DecidedBy | None = Field(description="controller, or the command that decided by hand; null while undecided.")
    reasons: list[str] = Field(description="Why the rollout ended as it did (or paused), one line each.")
    requests: Count = Field(description="Synthetic requests the rollout sent in all.")
    started_at: Timestamp = Field(description="When the rollout (or the decision by hand) started.")
    updated_at: Timestamp = Field(description="When the record was last written.")
    finished_at: Timestamp | None = Field(description="When the rollout ended; null while it runs or waits.")
    advance: str | None = Field(description="How the steps advance (locally: by request counts, not the recipe's "
                                            "durations); null in records written before schema_version.")


def record_path(state_dir: Path, recipe_name: str, env: str) -> Path:
    """Where the record of a recipe's rollout in one environment lives under the state dir."""
    safe = lambda s: re.sub(r"[^A-Za-z0-9_.-]", "_", s)  # noqa: E731 - names are DNS-like already
    return Path(state_dir) / "rollouts" / safe(recipe_name) / f"{safe(env)}.json"


def now() -> str:
    from datetime import datetime, timezone

    return datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def new_record(
    recipe,
    *,
    champion: str | None,
    candidate: str,
    model: str | None = None,
    status: Status = "running",
    decision: Decision | None = None,
    decided_by: DecidedBy | None = None,
    reasons: list[str] | None = None,
    weight: float = 0.0,
    finished: bool = False,
) -> RolloutRecord:
    """A fresh record of the recipe's rollout of `candidate` against `champion`: step 0,
    no verdicts, no requests; `finished` stamps finished_at."""
    started = now()
    return RolloutRecord(
        schema_version=SCHEMA_VERSION,
        recipe=recipe.name,
        env=recipe.environment,
        registered_model=recipe.registered_model,
        model=model,
        strategy=recipe.rollout.strategy,
        champion=None if champion is None else str(champion),
        candidate=str(candidate),
        status=status,
        step=0,
        steps=list(getattr(recipe.rollout, "steps", []) or []),
        weight=float(weight),
        verdicts=[],
        decision=decision,
        decided_by=decided_by,
        reasons=list(reasons or []),
        requests=0,
        started_at=started,
        updated_at=started,
        finished_at=started if finished else None,
        advance=ADVANCE,
    )


def dump_record(record: RolloutRecord) -> str:
    """The record file's text: deterministic JSON (sorted keys, indent 2, final newline)."""
    data = RolloutRecord.model_validate(record.model_dump()).model_dump(mode="json")  # what is written validates
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def parse_record(data: Any, source: Path | str) -> RolloutRecord:
    """A record from its decoded JSON; `source` (the file) names it in the error."""
    if isinstance(data, dict) and "schema_version" not in data:  # written before schema_version: version 1
        data = {"schema_version": SCHEMA_VERSION, **{key: None for key in LEGACY_OPTIONAL}, **data}
    if isinstance(data, dict) and data.get("schema_version") != SCHEMA_VERSION:
        raise _refused(source, "schema_version", f"schema_version {data.get('schema_version')!r} is not {SCHEMA_VERSION}, "
                                                 "the version this mlops reads (another mlops wrote it)")
    try:
        return RolloutRecord.model_validate(data)
    except ValidationError as error:
        errors = error.errors(include_url=False)
        first = errors[0]
        key = ".".join(str(part) for part in first["loc"])
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise _refused(source, key, f"not a valid rollout record: {first['msg']}{more}") from None


def load_record(path: Path) -> RolloutRecord | None:
    """The record in `path`; None when there is none. MlopsError (one line, naming the
    file) when it cannot be read, is not JSON, or does not validate."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as error:
        raise _refused(path, "", f"cannot read the rollout record: {getattr(error, 'strerror', None) or error}") from None
    try:
        data = json.loads(text)
    except ValueError as error:
        raise _refused(path, "", f"the rollout record is not JSON: {error}") from None
    return parse_record(data, path)


def _refused(source: Path | str, key: str, message: str) -> MlopsError:
    from framework.project import display_path

    where = display_path(Path(source)) if isinstance(source, Path) else str(source)
    hint = "; remove it and the next rollout writes a new one"
    return MlopsError([Problem(Location(where), key, message + hint)])


def record_schema() -> dict[str, Any]:
    """RolloutRecord's JSON Schema (the model's validation schema)."""
    return RolloutRecord.model_json_schema()


__all__ = [
    "RolloutRecord", "StepVerdict", "WindowStats", "new_record", "dump_record", "parse_record", "load_record",
    "record_schema", "now", "SCHEMA_VERSION", "SCHEMA_PATH", "ADVANCE",
]
