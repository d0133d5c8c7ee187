"""Run a generated GitHub Actions workflow locally, job by job, the way a runner would.

- Jobs run in the order their `needs` give (ties in file order); a job runs when its
  `if:` holds (default: every job it needs succeeded), else it is skipped.
- Every `run:` step runs in `bash --noprofile --norc -eo pipefail` (the workflow's
  `defaults.run.shell: bash`) in the checkout, with the workflow's, job's and step's
  `env:` (expressions substituted: `vars`, `secrets`, `github`, `needs.*.outputs`,
  `steps.*.outputs`), and with `GITHUB_OUTPUT`, `GITHUB_STEP_SUMMARY`, `GITHUB_ENV`,
  `GITHUB_PATH` and `RUNNER_TEMP` set to files and folders of that job, as on a runner.
  Step outputs become `steps.<id>.outputs`, then the job's `outputs:` are evaluated.
- `uses:` steps are skipped, except `actions/checkout`, which is the working tree; so
  the image build (docker's actions) and artifact upload are skipped.
- `after_job(job_id, result)` lets a test bring up what a job's effect would be (the
  staging endpoint after deploy-staging).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.pipeline.expressions import condition, substitute

CHECKOUT = "actions/checkout@"


@dataclass
class StepResult:
    name: str
    kind: str  # run | checkout | skipped-uses | skipped-if
    returncode: int | None = None
    seconds: float = 0.0
    log: str = ""


@dataclass
class JobResult:
    job_id: str
    result: str  # success | failure | skipped
    steps: list[StepResult] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)
    summary: str = ""
    seconds: float = 0.0

    def failed_step(self) -> StepResult | None:
        return next((s for s in self.steps if s.returncode not in (None, 0)), None)


class WorkflowLoader(yaml.SafeLoader):
    """YAML as GitHub reads it: only true/false are booleans (`on:` stays a string)."""


WorkflowLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def job_order(jobs: Mapping[str, Any]) -> list[str]:
    """Topological order of `needs`, ties in file order; a cycle or unknown need fails."""
    order: list[str] = []
    pending = list(jobs)
    while pending:
        ready = [j for j in pending if all(n in order for n in _needs(jobs[j]))]
        if not ready:
            raise ValueError(f"jobs {pending} need each other or an unknown job")
        order.append(ready[0])
        pending.remove(ready[0])
    return order


def _needs(job: Mapping[str, Any]) -> list[str]:
    needs = job.get("needs") or []
    return [needs] if isinstance(needs, str) else list(needs)


def _read_pairs(path: Path) -> dict[str, str]:
    """`name=value` lines and `name<<EOF ... EOF` blocks ($GITHUB_OUTPUT, $GITHUB_ENV)."""
    values: dict[str, str] = {}
    lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
    i = 0
    while i < len(lines):
        line = lines[i]
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            name, marker = line.split("<<", 1)
            block = []
            i += 1
            while i < len(lines) and lines[i] != marker:
                block.append(lines[i])
                i += 1
            values[name] = "\n".join(block)
        elif "=" in line:
            name, value = line.split("=", 1)
            values[name] = value
        i += 1
    return values


class Harness:
    def __init__(self, workflow: Path, checkout: Path, work: Path, *, event: str = "push", sha: str = "0" * 40,
                 variables: Mapping[str, str] | None = None, secrets: Mapping[str, str] | None = None,
                 env: Mapping[str, str] | None = None,
                 after_job: Callable[[str, JobResult], None] | None = None, step_timeout: float = 900.0):
        self.workflow = yaml.load(Path(workflow).read_text(encoding="utf-8"), Loader=WorkflowLoader)
        self.checkout, self.work = Path(checkout), Path(work)
        self.github = {"event_name": event, "sha": sha, "ref": "refs/heads/main", "actor": "harness",
                       "repository": "example/mlops", "server_url": "https://github.com", "workspace": str(checkout)}
        self.variables, self.secrets = dict(variables or {}), dict(secrets or {})
        self.base_env = dict(env or os.environ)
        self.after_job, self.step_timeout = after_job, step_timeout
        self.results: dict[str, JobResult] = {}

    # --- contexts -----------------------------------------------------------------------
    def _contexts(self, steps: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None) -> dict[str, Any]:
        needs = {j: {"result": r.result, "outputs": r.outputs} for j, r in self.results.items()}
        return {"github": self.github, "vars": self.variables, "secrets": self.secrets, "needs": needs,
                "steps": dict(steps or {}), "env": dict(env or {}), "runner": {"temp": ""}}

    def _env(self, block: Mapping[str, Any] | None, contexts: Mapping[str, Any]) -> dict[str, str]:
        return {k: substitute(str(v), contexts) for k, v in (block or {}).items()}

    # --- running ------------------------------------------------------------------------
    def run(self) -> dict[str, JobResult]:
        jobs = self.workflow["jobs"]
        for job_id in job_order(jobs):
            result = self._job(job_id, jobs[job_id])
            self.results[job_id] = result
            if self.after_job is not None and result.result != "skipped":
                self.after_job(job_id, result)
        return self.results

    def _job(self, job_id: str, job: Mapping[str, Any]) -> JobResult:
        needed = [self.results[n].result for n in _needs(job)]
        status = {"always": True, "cancelled": False, "success": all(r == "success" for r in needed),
                  "failure": any(r == "failure" for r in needed)}
        if not condition(job.get("if"), self._contexts(), status):
            return JobResult(job_id, "skipped")
        began = time.monotonic()
        folder = self.work / job_id
        temp = folder / "runner-temp"
        temp.mkdir(parents=True, exist_ok=True)
        files = {name: folder / name.lower() for name in ("GITHUB_STEP_SUMMARY", "GITHUB_ENV", "GITHUB_PATH")}
        for path in files.values():
            path.touch()
        contexts = self._contexts()
        env = {**self._env(self.workflow.get("env"), contexts), **self._env(job.get("env"), contexts)}
        steps_ctx: dict[str, Any] = {}
        result = JobResult(job_id, "success")
        failed = False
        for index, step in enumerate(job.get("steps", [])):
            name = step.get("name") or step.get("uses") or step.get("run", "")[:40]
            contexts = self._contexts(steps_ctx, env)
            step_status = {"always": True, "cancelled": False, "success": not failed, "failure": failed}
            if not condition(step.get("if"), contexts, step_status):
                result.steps.append(StepResult(name, "skipped-if"))
                continue
            if "uses" in step:
                kind = "checkout" if step["uses"].startswith(CHECKOUT) else "skipped-uses"
                result.steps.append(StepResult(name, kind, 0 if kind == "checkout" else None))
                continue
            output = folder / f"step-{index}.output"
            output.touch()
            step_env = {**env, **_read_pairs(files["GITHUB_ENV"]), **self._env(step.get("env"), contexts)}
            outcome = self._shell(step["run"], step_env, {**{k: str(v) for k, v in files.items()},
                                                          "GITHUB_OUTPUT": str(output), "RUNNER_TEMP": str(temp)},
                                  files["GITHUB_PATH"], folder / f"step-{index}.log")
            outcome.name = name
            result.steps.append(outcome)
            if "id" in step:
                steps_ctx[step["id"]] = {"outputs": _read_pairs(output),
                                         "outcome": "success" if outcome.returncode == 0 else "failure"}
            if outcome.returncode != 0:
                failed = True
        result.result = "failure" if failed else "success"
        contexts = self._contexts(steps_ctx, env)
        result.outputs = {k: substitute(str(v), contexts) for k, v in (job.get("outputs") or {}).items()}
        result.summary = files["GITHUB_STEP_SUMMARY"].read_text(encoding="utf-8")
        result.seconds = time.monotonic() - began
        return result

    def _shell(self, script: str, env: Mapping[str, str], runner_files: Mapping[str, str], path_file: Path,
               log: Path) -> StepResult:
        extra_path = [line for line in path_file.read_text(encoding="utf-8").splitlines() if line.strip()]
        full = {**self.base_env, **env, **runner_files, "CI": "true", "GITHUB_ACTIONS": "true",
                "GITHUB_SHA": self.github["sha"], "GITHUB_REF": self.github["ref"],
                "GITHUB_EVENT_NAME": self.github["event_name"], "GITHUB_WORKSPACE": str(self.checkout)}
        full["PATH"] = os.pathsep.join([*reversed(extra_path), self.base_env.get("PATH", "")])
        began = time.monotonic()
        with log.open("w", encoding="utf-8") as out:
            try:
                done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
                                      cwd=self.checkout, env=full, stdout=out, stderr=subprocess.STDOUT,
                                      timeout=self.step_timeout)
                code = done.returncode
            except subprocess.TimeoutExpired:
                code = 124
        return StepResult("", "run", code, time.monotonic() - began, log.read_text(encoding="utf-8"))


__all__ = ["Harness", "JobResult", "StepResult", "job_order"]
