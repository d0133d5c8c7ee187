"""The apply pipelines declare their steps once: `apply --dry-run` lists the steps the
real apply runs (and the training job's own phases), results carry their exit codes,
and a kind's pipeline is imported only when a recipe of that kind is applied."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from framework import api
from framework.api.pipelines import tabular
from tests.conftest import REPO

# The headings framework.runtime.training.run prints for its phases -> the step that declares each.
RUNTIME_PHASES = {"data": "data", "teacher": "teacher", "hyper-parameter search": "hpo", "training on Ray": "train",
                  "evaluation and export": "evaluate", "drift reference": "drift reference", "registry": "register"}


def test_every_phase_of_the_training_job_is_a_declared_step_in_its_order() -> None:
    source = (REPO / "framework" / "runtime" / "training" / "run.py").read_text(encoding="utf-8")
    phases = re.findall(r'with step\("([^"]+)"', source)
    assert phases and set(phases) <= set(RUNTIME_PHASES), set(phases) - set(RUNTIME_PHASES)
    declared = [step.name for step in tabular.TRAINING_JOB]
    assert [RUNTIME_PHASES[p] for p in phases] == [n for n in declared if n in RUNTIME_PHASES.values()]


def test_the_dry_run_lists_the_pipeline_steps_with_the_drift_reference() -> None:
    result = api.apply("churn", dry_run=True, project=REPO)
    names = [line.split(":")[0] for line in result.steps]
    assert names == ["generate", "data", "train", "track", "evaluate", "drift reference", "gates", "register",
                     "serve-ready", "rollout"]
    assert result.exit_code == 0 and result.handover() is None
    assert result.lines()[0] == "churn (dev) would run:" and result.lines()[6].startswith("  6. drift reference: ")
    only = api.apply("churn", dry_run=True, register_only=True, project=REPO)
    assert [line.split(":")[0] for line in only.steps][-2:] == ["register (no alias", "serve-ready"]


def test_a_rolled_back_candidate_exits_1_and_says_so_on_stderr(tmp_path: Path) -> None:
    from framework.runtime.rollout.controller import RolloutResult

    rollout = RolloutResult("churn", "dev", "canary", "1", "2", "rolled_back", ["canary: worse"], [], 100, None)
    outcome = SimpleNamespace(recipe="churn", environment="dev", model_version="2", aliases=["candidate"], metrics={},
                              run_id="r", tracking_uri="file:x", run_dir=tmp_path, model_repository=None, wandb_run=None)
    result = api.ApplyResult("churn", "dev", tmp_path, [], outcome, rollout=rollout)
    assert result.exit_code == 1
    errors = [line for line in result.lines() if isinstance(line, api.Err)]
    assert errors == ["rollout: version 2 was rolled back; the champion is unchanged"]
    assert result.handover().outputs == {"run-id": "r", "model-version": "2"}
    assert api.ApplyResult("churn", "dev", tmp_path, [], job_status="SUCCEEDED").handover().missing


def test_results_carry_their_exit_codes() -> None:
    assert api.PlanResult("churn", "dev", []).exit_code == 0
    assert api.PlanResult("churn", "dev", ["serving.port: 8000 -> 8001"]).exit_code == 2
    invalid = api.ValidateResult([api.RecipeStatus("chrun", None, [_problem()])])
    *problems, summary = invalid.lines()
    assert invalid.exit_code == 1 and all(isinstance(line, api.Err) for line in problems)
    assert summary == "0 valid, 1 invalid, 0 warnings"  # the summary line, on stdout


def _problem():
    from framework.errors import Problem

    return Problem(None, "", "unknown recipe 'chrun'")


def test_a_pipeline_is_imported_only_for_its_kind() -> None:
    code = ("import sys; from framework import api; loaded = lambda: sorted(m.rsplit('.', 1)[1] for m in sys.modules "
            "if m.startswith('framework.api.pipelines.')); print(loaded()); "
            "api.apply('churn', dry_run=True); print(loaded())")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == ["[]", "['tabular']"]
