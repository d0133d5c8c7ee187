"""Apply pipelines as data: the steps `apply --dry-run` lists are the steps `apply` runs.
A `Pipeline` is a list of `Stage`s; a stage is one callable (generate, the training job,
the rollout) and the `Step`s it carries out, each with its name, the line the dry run
prints, and when it applies to a recipe and its options. The training job runs several
steps in one call (data to serve-ready, in framework.runtime.training.run), so its
stage lists them all; a stage none of whose steps apply does not run. `Pipeline.apply`
checks the options, lists the applicable steps, and (unless a dry run) runs the stages
in order, which leave what they produced on the `ApplyRun` for the `ApplyResult`.
The pipelines of each model kind are in framework/api/pipelines/.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from framework.api.results import ApplyResult
from framework.errors import MlopsError, Problem
from framework.project import Project


@dataclass
class ApplyRun:
    """One `apply`: the recipe and its options, which the steps describe and the stages
    run with, and what the stages leave for the result."""

    name: str  # the recipe as the command named it (a name or a path)
    env_name: str | None  # the env as given (None: the recipe's default)
    recipe: Any  # the validated framework.recipe.Recipe
    project: Project
    target: str = "local"
    address: str | None = None
    console: Any = None
    register_only: bool = False
    head_shares_disk: bool = False
    use_cache: bool = True  # reuse a finished run with the same step fingerprints (--no-cache: False)
    probe: Any = None  # the cache's answer (framework.runtime.stepcache.probe.Probe), asked once
    # left by the stages
    report: str = ""
    outcome: Any = None
    job_status: str | None = None
    job_outcome: dict[str, Any] | None = None
    rollout: Any = None
    serve_hint: str = ""

    @property
    def env_dir(self) -> Path:
        return self.project.generated_dir / self.recipe.name / self.recipe.environment

    @property
    def resolved(self) -> Path:
        return self.env_dir / "recipe.resolved.yaml"


def always(run: ApplyRun) -> bool:
    return True


@dataclass(frozen=True)
class Step:
    """One step: its name, its dry-run line (`describe`) and whether it applies (`when`)."""

    name: str
    describe: Callable[[ApplyRun], str]
    when: Callable[[ApplyRun], bool] = always


@dataclass(frozen=True)
class Stage:
    """The callable that carries out `steps`, in order; it runs when any of them applies."""

    run: Callable[[ApplyRun], None]
    steps: tuple[Step, ...]

    def applies(self, run: ApplyRun) -> bool:
        return any(step.when(run) for step in self.steps)


def no_check(run: ApplyRun) -> None:
    return None


def no_statuses(run: ApplyRun) -> dict[str, str]:
    return {}


@dataclass(frozen=True)
class Pipeline:
    """What `apply` does for one kind of recipe on one target. `check` refuses options
    before anything runs (a dry run too); `registers`: it registers a model version, whose
    run and version a CI job hands on; `statuses`: per step name, whether it runs or is
    cached and why, for the dry run."""

    stages: tuple[Stage, ...]
    check: Callable[[ApplyRun], None] = no_check
    registers: bool = True
    statuses: Callable[[ApplyRun], dict[str, str]] = no_statuses

    def steps(self, run: ApplyRun) -> list[Step]:
        return [step for stage in self.stages for step in stage.steps if step.when(run)]

    def apply(self, run: ApplyRun, dry_run: bool = False) -> ApplyResult:
        if not run.use_cache and self.statuses is no_statuses:
            message = f"reuses nothing when applying {run.recipe.name}, whose steps are not cached: leave it out"
            raise MlopsError([Problem(None, "--no-cache", message)])
        self.check(run)
        r = run.recipe
        lines = [step.describe(run) for step in self.steps(run)]
        if dry_run:
            said = self.statuses(run)
            lines = [f"{line} [{said[step.name]}]" if step.name in said else line
                     for step, line in zip(self.steps(run), lines)]
            return ApplyResult(r.name, r.environment, run.resolved, lines, dry_run=True)
        for stage in self.stages:
            if stage.applies(run):
                stage.run(run)
        return ApplyResult(r.name, r.environment, run.resolved, lines, run.outcome, job_status=run.job_status,
                           rollout=run.rollout, serve_hint=run.serve_hint, job_outcome=run.job_outcome,
                           trained=self.registers, report=run.report)


def generate_files(run: ApplyRun) -> None:
    """The generate stage: the jobs read only the files generate writes."""
    from framework.api.generate import generate

    generate([run.name], env=run.env_name, project=run.project)


def needs_address(run: ApplyRun) -> None:
    """`--target ray` submits to a cluster: refused without its address."""
    if not run.address:
        message = "--target ray needs --address URL (the cluster's job API, e.g. http://127.0.0.1:8265)"
        raise MlopsError([Problem(None, "--target", message)])
