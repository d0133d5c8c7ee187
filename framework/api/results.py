"""What the API's commands return: each result carries its text and its exit code.
A `Result` says what a command did in `lines()` (stdout; lines marked `Err` go to
stderr), its `exit_code` (0 done, 1 a failed check or a rolled-back candidate, 2 a plan
with changes; errors are raised as `MlopsError`s instead, see errors.py), the rich
tables to show on stderr (`tables()`) and what a GitHub Actions job hands on
(`handover()`: step outputs and job-summary markdown). The CLI prints a result through
one function (framework/cli/common.py `finish`), so these classes are the only place
that decides what a command says and how it exits. The results of the CI pipeline's
commands, drift checks and batch runs are in results_ci.py. Import-light: runtime
helpers that render text are imported when the text is asked for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from framework.errors import Problem


class Err(str):
    """A line of a result that belongs on stderr (a failure, a rejected candidate)."""


@dataclass(frozen=True)
class Handover:
    """What a command run by a CI job hands on: `$GITHUB_OUTPUT` values for later jobs,
    markdown for the job summary, or why the outputs later jobs need are missing (under
    GitHub Actions that fails the command)."""

    outputs: dict[str, str] = field(default_factory=dict)
    summary: str = ""
    missing: str = ""


class Result:
    """Base of every result: its text (`lines()`, `text`), its `exit_code`, its tables
    and its CI hand-over. Subclasses override what applies to them."""

    @property
    def exit_code(self) -> int:
        return 0

    def lines(self) -> list[str]:
        return []

    @property
    def text(self) -> str:
        return "\n".join(self.lines())

    def tables(self) -> list[Any]:
        """Rich renderables for stderr, shown before the lines."""
        return []

    def handover(self) -> Handover | None:
        return None


def text_lines(text: str) -> list[str]:
    """A printed block's lines, as print(text) writes them (none for an empty text)."""
    return text.split("\n") if text else []


def version_text(version: str | None) -> str:
    return f"version {version}" if version is not None else "none"


# --- recipes: validate, show, schema, generate, plan ---------------------------------------
def count(n: int, noun: str) -> str:
    """'1 warning', '2 warnings'."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


@dataclass(frozen=True)
class RecipeStatus:
    recipe: str
    env: str | None
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)  # of a valid recipe (Validated.warnings)
    strict: bool = False  # `--strict`: warnings make the recipe invalid

    @property
    def ok(self) -> bool:
        return not self.problems and not (self.strict and self.warnings)


@dataclass(frozen=True)
class ValidateResult(Result):
    statuses: list[RecipeStatus]
    strict: bool = False

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.statuses)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def lines(self) -> list[str]:
        """`ok`/`invalid` per recipe and env, each followed by its problems and warnings
        (stderr), then the summary: valid, invalid, warnings."""
        out: list[str] = []
        for status in self.statuses:
            where = f"{status.recipe} ({status.env})" if status.env else status.recipe
            if status.ok:
                out.append(f"ok       {where}")
            else:
                out.append(Err(f"invalid  {where}"))
            out += [Err(str(problem)) for problem in status.problems + status.warnings]
        valid = sum(s.ok for s in self.statuses)
        warnings = sum(len(s.warnings) for s in self.statuses)
        strict = " (errors under --strict)" if self.strict and warnings else ""
        summary = f"{valid} valid, {len(self.statuses) - valid} invalid, {count(warnings, 'warning')}{strict}"
        return out + [summary]


@dataclass(frozen=True)
class Leaf:
    path: str  # dotted key path, list items by index
    value: Any
    source: str  # "file:line", "<override>" or "(default)"


@dataclass(frozen=True)
class ShowResult(Result):
    recipe: str
    env: str
    resolved: dict[str, Any]
    leaves: list[Leaf]
    provenance: bool = False  # lines(): `source  key.path: value` per leaf instead of the YAML

    @property
    def yaml(self) -> str:
        from framework.render_text import to_yaml

        return to_yaml(self.resolved)

    def lines(self) -> list[str]:
        if self.provenance:
            from framework.render_text import provenance_lines

            return list(provenance_lines(self))
        return text_lines(self.yaml.removesuffix("\n"))


@dataclass(frozen=True)
class SchemaResult(Result):
    written: list[Path]
    drifted: list[Path]
    checked: bool = False  # `schema --check` (drift raises a DriftError, exit 2)

    def lines(self) -> list[str]:
        if self.checked:
            return ["schemas are up to date"]
        from framework.project import display_path

        return [f"wrote {display_path(path)}" for path in self.written]


@dataclass(frozen=True)
class GenerateResult(Result):
    recipes: list[tuple[str, str]]  # (recipe, env) rendered
    added: list[Path]
    changed: list[Path]
    removed: list[Path]
    unchanged: int
    checked: bool = False  # `generate --check`: nothing written (drift raises a DriftError, exit 2)
    warnings: list[Problem] = field(default_factory=list)  # of the recipes rendered, each line once

    def lines(self) -> list[str]:
        from framework.project import display_path

        out = [f"{kind:8} {display_path(path)}"
               for kind, paths in (("added", self.added), ("changed", self.changed), ("removed", self.removed))
               for path in paths]
        out += [Err(str(warning)) for warning in self.warnings]
        combos = ", ".join(f"{r} ({e})" for r, e in self.recipes)
        verdict = "up to date" if self.checked else f"{len(self.added) + len(self.changed) + len(self.removed)} files changed"
        return out + [f"{verdict}, {count(len(self.warnings), 'warning')}: {combos}"]


@dataclass(frozen=True)
class PlanResult(Result):
    recipe: str
    env: str
    differences: list[str]  # what would change, in domain terms
    training: str = ""  # whether apply's training job is cached or runs, and why

    @property
    def changes(self) -> bool:
        return bool(self.differences)

    @property
    def exit_code(self) -> int:
        return 2 if self.changes else 0

    def lines(self) -> list[str]:
        training = [f"  apply: {self.training}"] if self.training else []
        if not self.changes:
            return [f"{self.recipe} ({self.env}): no changes"] + training
        return [f"{self.recipe} ({self.env}):"] + [f"  {line}" for line in self.differences] + training


# --- apply and serve -----------------------------------------------------------------------
MISSING_VERSION = ("train: the job reported no model version (no 'mlops-outcome:' line in its log): does the "
                   "cluster run this version of mlops?")


@dataclass(frozen=True)
class ApplyResult(Result):
    recipe: str
    env: str
    resolved: Path
    steps: list[str]  # the pipeline's steps, as `apply --dry-run` lists them
    outcome: Any = None  # framework.runtime.training.run.Outcome when it trained here (a RagOutcome, a KubeOutcome)
    job_status: str | None = None  # the Ray job's final status with --target ray
    rollout: Any = None  # framework.runtime.rollout.controller.RolloutResult
    serve_hint: str = ""  # where to send requests afterwards
    job_outcome: dict[str, Any] | None = None  # run_id, model_version, ... the job reported (--target ray, kubernetes)
    trained: bool = True  # registered a model version whose run and version later CI jobs need
    dry_run: bool = False  # nothing ran: lines() lists the steps
    report: str = ""  # what ran, in the pipeline's words; empty: the training outcome's summary

    @property
    def rolled_back(self) -> bool:
        return self.rollout is not None and self.rollout.decision == "rolled_back"

    @property
    def exit_code(self) -> int:
        return 1 if self.rolled_back else 0  # CI must see a rejected candidate

    def training(self) -> dict[str, Any] | None:
        """The run id, model version and tracking URI of the version it trained."""
        if self.job_outcome is not None:
            return self.job_outcome
        version = getattr(self.outcome, "model_version", None)  # a training Outcome's
        if version is None:
            return None
        return {"run_id": self.outcome.run_id, "model_version": version,
                "tracking_uri": getattr(self.outcome, "tracking_uri", None)}

    def lines(self) -> list[str]:
        if self.dry_run:
            return [f"{self.recipe} ({self.env}) would run:"] + [f"  {n}. {s}" for n, s in enumerate(self.steps, 1)]
        report = self.report
        if not report and self.outcome is not None:
            from framework.runtime.training.run import summary

            report = summary(self.outcome)
        out = text_lines(report)
        if self.rollout is not None:
            from framework.runtime.rollout.controller import summary as rollout_summary

            out += text_lines(rollout_summary(self.rollout))
        out += text_lines(self.serve_hint)
        if self.rolled_back:
            out.append(Err(f"rollout: version {self.rollout.candidate} was rolled back; the champion is unchanged"))
        return out

    def handover(self) -> Handover | None:
        if self.dry_run or not self.trained:
            return None
        trained = self.training()
        if not trained or not trained.get("model_version"):
            return Handover(missing=MISSING_VERSION)
        return Handover({"run-id": trained["run_id"], "model-version": trained["model_version"]},
                        f"### Training\n\nmodel version **{trained['model_version']}**, MLflow run "
                        f"`{trained['run_id']}` in `{trained.get('tracking_uri')}`")


@dataclass(frozen=True)
class ServeResult(Result):
    recipe: str
    env: str
    url: str
    versions: dict[str, list[str]]  # model -> versions served
    routing: str = ""  # how requests naming no version are routed (LivePlan.describe)
    cluster: bool = False  # deployed to a Ray cluster (and still running there)

    def lines(self) -> list[str]:
        if not self.cluster:
            return [f"stopped serving {self.recipe} ({self.env})"]
        return [f"serving {model} (versions {', '.join(served)}) on the Ray cluster at {self.url}/v2/models/{model}"
                for model, served in self.versions.items()] + [f"requests without a version: {self.routing}"]


def serving_lines(name: str, url: str, versions: dict[str, list[str]], routing: str) -> list[str]:
    """What `mlops serve` says once it listens: the models and versions (none: the RAG
    service of recipe `name`), how unversioned requests are routed, where the metrics are."""
    if not versions:
        return [f"serving {name} at {url}/query (POST {{\"question\": ..., \"top_k\": ...}})", routing,
                f"metrics at {url}/metrics; Ctrl-C stops"]
    return ([f"serving {model} (versions {', '.join(served)}) at {url}/v2/models/{model}"
             for model, served in versions.items()]
            + [f"requests without a version: {routing}", f"metrics at {url}/metrics; Ctrl-C stops"])


# --- moving a rollout by hand ----------------------------------------------------------------
@dataclass(frozen=True)
class RolloutStatus(Result):
    recipe: str
    env: str
    registered_model: str
    tracking_uri: str
    champion: str | None  # versions the MLflow aliases point at
    candidate: str | None
    rejected: str | None
    state: dict[str, Any] | None  # the rollout record (.mlops/rollouts/<recipe>/<env>.json)
    state_path: Path
    cluster: str | None = None  # the application on a Ray cluster (--address)
    data: dict[str, dict[str, str]] = field(default_factory=dict)  # version -> its mlops.data.* tags, unprefixed

    def lines(self) -> list[str]:
        from framework.runtime.rollout.state import describe

        out = [f"{self.recipe} ({self.env}): registered model '{self.registered_model}'",
               f"  champion:  {self._version(self.champion)}",
               f"  candidate: {self._version(self.candidate)}",
               f"  rejected:  {self._version(self.rejected)}"]
        out += [f"  {line}" for line in describe(self.state)]
        if self.cluster:
            out.append(f"  serving:   {self.cluster}")
        return out

    def _version(self, version: str | None) -> str:
        """A version, with the data it was trained on when training recorded it."""
        data = self.data.get(version or "", {})
        if "sha256" not in data:
            return version_text(version)
        rev = f", rev {data['rev'][:12]}" if data.get("rev") else ""
        return f"{version_text(version)} (data {data.get('uri', '?')} sha256 {data['sha256'][:12]}{rev})"


@dataclass(frozen=True)
class RolloutChange(Result):
    recipe: str
    env: str
    registered_model: str
    action: str  # promote | rollback
    version: str  # the candidate moved
    champion: str | None  # after the change
    previous_champion: str | None
    state_path: Path

    def lines(self) -> list[str]:
        if self.action == "promote":
            return [f"{self.recipe} ({self.env}): promoted version {self.version} to champion "
                    f"(was {version_text(self.previous_champion)})"]
        return [f"{self.recipe} ({self.env}): rolled back version {self.version} (alias rejected); "
                f"champion stays {version_text(self.champion)}"]
