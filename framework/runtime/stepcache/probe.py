"""Whether apply's training job may be skipped, and why (not).

`probe` looks for a finished MLflow run of the recipe whose job fingerprint (see
fingerprint.py) equals this apply's and whose model version is still registered: then
the job's outputs (run, version, metrics, the exported file) are reused. Otherwise it
finds the newest run that recorded fingerprints and names the first step whose inputs
differ from it: `training.epochs changed (10 -> 20)`, `data changed (...)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from framework.errors import MlopsError
from framework.contracts import fingerprint as fp
from framework.runtime.stepcache.store import FinishedRun, StoreUnreadable, reader_for

SHOWN_CHANGES = 3


@dataclass(frozen=True)
class Hit:
    run: FinishedRun
    version: str
    source: str  # the version's artifact location
    uri: str
    data: dict[str, str]

    def line(self) -> str:
        return f"cached (run {self.run.run_id[:12]}, model version {self.version}, {_data_text(self.data)})"


@dataclass
class Probe:
    uri: str
    hit: Hit | None = None
    reason: str = ""  # why the job runs
    step: str | None = None  # the first step whose inputs changed
    aliases: dict[str, str] = field(default_factory=dict)

    def status(self, step: str) -> str:
        """One step's word for `apply --dry-run` and plan."""
        if self.hit is not None:
            return self.hit.line()
        steps = [name for name, _ in fp.STEPS]
        if self.step in steps and step in steps and steps.index(step) < steps.index(self.step):
            return f"runs: the job runs as a whole ({self.reason})"
        return f"runs: {self.reason}"


def probe(recipe: Any, root: Path, state_dir: Path, use_cache: bool = True) -> Probe:
    from framework.runtime.tracking import tracking_uri

    uri = tracking_uri(recipe, state_dir)
    if not use_cache:
        return Probe(uri, reason="--no-cache")
    reader = reader_for(uri)
    try:
        if not reader.exists():
            return Probe(uri, reason=f"no finished run of {recipe.name} ({recipe.environment}) yet")
        last = reader.last_run(recipe.experiment, recipe.name, recipe.environment)
        if last is None:
            return Probe(uri, reason=f"no finished run of {recipe.name} ({recipe.environment}) recorded its inputs")
        found = current(recipe, root, reader)
        aliases = reader.aliases(recipe.registered_model)
        same = last if last.tags.get(fp.TAG) == found.job else reader.last_run(
            recipe.experiment, recipe.name, recipe.environment, found.job)
        version = reader.version_of_run(recipe.registered_model, same.run_id) if same is not None else None
    except StoreUnreadable as error:
        return Probe(uri, reason=f"the tracking store could not be read ({error})")
    except MlopsError as error:  # the data step will say it properly
        return Probe(uri, reason=f"its data could not be read ({str(error).splitlines()[0]})")
    if version is not None:
        return Probe(uri, Hit(same, version[0], version[1], uri, found.data), aliases=aliases)
    if same is not None:
        return Probe(uri, reason=f"run {same.run_id[:12]} had these inputs but registered no version "
                     f"of '{recipe.registered_model}' (a failed gate, or the version was deleted)", aliases=aliases)
    step, reason = explain(last, found)
    return Probe(uri, reason=reason, step=step, aliases=aliases)


def current(recipe: Any, root: Path, reader) -> fp.Fingerprints:
    """This apply's fingerprints: its data read and hashed (Feast: joined) here."""
    from framework.runtime.training.data_version import data_version

    table = None
    if recipe.data.source.feast is not None:  # the job hashes the joined table: so must we
        from framework.runtime.training.data_source import load_table

        table = load_table(recipe, root)
    return fp.fingerprints(recipe, fp.identity(data_version(recipe, root, table)),
                           fp.teacher_inputs(recipe, lambda name, alias: reader.aliases(name).get(alias)))


def explain(last: FinishedRun, found: fp.Fingerprints) -> tuple[str | None, str]:
    """The first step whose fingerprint differs from last's, and what changed in it."""
    if last.tags.get(fp.CODE_TAG) != found.code:
        return fp.STEPS[0][0], f"the training code or a library changed since run {last.run_id[:12]}"
    for step, _ in fp.STEPS:
        if last.tags.get(f"{fp.STEP_TAG}{step.replace(' ', '_')}") == found.steps[step]:
            continue
        changes = [_change(key, last.params.get(key), value) for key, value in found.params.items()
                   if fp.step_of(key) == step and last.params.get(key) != value]
        changes += [f"{key} removed" for key in last.params
                    if fp.step_of(key) == step and key not in found.params and not key.startswith("hpo.best.")]
        if step == "data" and _data_of(last) != found.data:
            changes.insert(0, _data_change(_data_of(last), found.data))
        if step == "teacher" and not changes:
            changes.append("the teacher's alias points at another version")
        if not changes:
            return step, f"the inputs of {step} changed since run {last.run_id[:12]}"
        more = f" and {len(changes) - SHOWN_CHANGES} more" if len(changes) > SHOWN_CHANGES else ""
        return step, ", ".join(changes[:SHOWN_CHANGES]) + more
    return None, f"no run with these inputs (newest: run {last.run_id[:12]})"


def _change(key: str, before: str | None, after: str) -> str:
    return f"{key} set to {_short(after)}" if before is None else f"{key} changed ({_short(before)} -> {_short(after)})"


def _short(value: str, limit: int = 40) -> str:
    return value if len(value) <= limit else value[:limit - 3] + "..."


def _data_of(run: FinishedRun) -> dict[str, str]:
    from framework.runtime.training.data_version import TAG_SHA256, TAG_TABLE_SHA256

    data = {"sha256": run.tags.get(TAG_SHA256, "-")}
    if TAG_TABLE_SHA256 in run.tags:
        data["table_sha256"] = run.tags[TAG_TABLE_SHA256]
    return data


def _data_change(before: dict[str, str], after: dict[str, str]) -> str:
    changed = [f"{name} {before.get(key, '-')[:12]} -> {after.get(key, '-')[:12]}"
               for key, name in (("sha256", "sha256"), ("table_sha256", "joined table sha256"))
               if before.get(key) != after.get(key)]
    return f"the data changed ({', '.join(changed)})"


def _data_text(data: dict[str, str]) -> str:
    text = f"data sha256 {data.get('sha256', '-')[:12]}"
    return text + (f", joined table {data['table_sha256'][:12]}" if "table_sha256" in data else "")


