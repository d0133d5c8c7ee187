"""The CLI end to end: exit codes, output, and what it imports."""

from __future__ import annotations

import json
import subprocess
import sys

import yaml

from framework import api
from tests.conftest import REPO, run_cli

HEAVY = ("torch", "ray", "mlflow", "evidently", "onnx", "onnxruntime", "pandas", "vllm")


def test_help_lists_the_commands() -> None:
    result = run_cli("--help")
    assert result.exit_code == 0
    for command in ("validate", "show", "schema"):
        assert command in result.stdout


def test_validate_everything_in_every_env(project) -> None:
    result = run_cli("validate", "--all-envs")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.count("ok ") == 9


def test_validate_reports_every_recipe_and_fails_if_one_fails(project) -> None:
    result = run_cli("validate", "churn", "support_assistant", "chrun")
    assert result.exit_code == 1
    assert "ok       churn (dev)" in result.stdout
    assert "ok       support_assistant (dev)" in result.stdout
    assert "unknown recipe 'chrun'" in result.stderr


def test_show_prints_the_resolved_recipe_as_yaml(project) -> None:
    result = run_cli("show", "churn", "--env", "prod")
    assert result.exit_code == 0, result.stderr
    shown = yaml.safe_load(result.stdout)
    assert shown == api.show("churn", env="prod").resolved
    assert shown["deploy"]["namespace"] == "ml-prod"
    assert shown["serving"]["port"] == 8000  # defaults are filled in


def test_the_cli_imports_no_heavy_library() -> None:
    code = (
        "import sys; from framework.cli import main; sys.argv=['mlops','validate','churn'];\n"
        "try: main()\nexcept SystemExit: pass\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr


def test_bad_input_from_a_real_process_has_no_traceback() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "framework.cli", "validate", "churn", "serving=trition"],
        cwd=REPO, capture_output=True, text=True,
    )
    assert out.returncode == 1
    assert out.stderr.splitlines()[-1] == (
        "<override>: serving: unknown option 'trition' (did you mean 'triton'?); options: ray_serve, ray_serve_llm, sglang, tgi, triton, vllm"
    )
    assert "Traceback" not in out.stderr


def test_show_with_provenance_output_is_json_values(project) -> None:
    result = run_cli("show", "churn", "-p")
    assert result.exit_code == 0
    for line in result.stdout.splitlines():
        source, rest = line.split(None, 1)
        key, value = rest.split(": ", 1)
        json.loads(value)
