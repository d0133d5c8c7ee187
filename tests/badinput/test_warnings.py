"""Warnings: a value that still works but should go (serving.backend tgi, archived
upstream). validate and generate print one `file:line: key: warning: ...` line on
stderr per warning, count it in their summary line and exit 0; `--strict` makes it an
error (exit 1, generate writes nothing). The warnings are data of the validated result
(`Validated.warnings`), never printed while composing."""

from __future__ import annotations

from pathlib import Path

from framework import api
from framework.errors import Location, Problem
from tests.conftest import run_cli, tree_snapshot

TGI_WARNING = (
    "recipes/serving/tgi.yaml:2: serving.backend: warning: serving.backend tgi is deprecated: Text Generation "
    "Inference was archived upstream in March 2026 (huggingface/text-generation-inference is read-only: no fixes, "
    "no new models); use serving.backend sglang or vllm"
)


def _warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ": warning: " in line]


def test_the_warning_is_data_of_the_validated_recipe(project: Path) -> None:
    validated = api.load_recipe("support_assistant", overrides=["serving=tgi"])
    assert validated.warnings == (
        Problem(Location("recipes/serving/tgi.yaml", 2), "serving.backend", TGI_WARNING.split(": warning: ", 1)[1],
                "warning"),
    )
    assert [str(w) for w in validated.warnings] == [TGI_WARNING]
    assert api.load_recipe("support_assistant", overrides=["serving=sglang"]).warnings == ()


def test_validate_prints_and_counts_the_warning_and_passes(project: Path) -> None:
    result = run_cli("validate", "support_assistant", "serving=tgi")
    assert result.exit_code == 0, result.stderr
    assert _warnings(result.stderr) == [TGI_WARNING]
    assert result.stdout.splitlines() == ["ok       support_assistant (dev)", "1 valid, 0 invalid, 1 warning"]


def test_validate_strict_makes_the_warning_an_error(project: Path) -> None:
    result = run_cli("validate", "support_assistant", "serving=tgi", "--strict")
    assert result.exit_code == 1
    assert _warnings(result.stderr) == [TGI_WARNING]
    assert "invalid  support_assistant (dev)" in result.stderr
    assert result.stdout.splitlines()[-1] == "0 valid, 1 invalid, 1 warning (errors under --strict)"
    assert run_cli("validate", "support_assistant", "serving=sglang", "--strict").exit_code == 0


def test_no_warning_for_the_examples(project: Path) -> None:
    result = run_cli("validate", "--all-envs", "--strict")
    assert result.exit_code == 0, result.stderr
    assert _warnings(result.stderr) == []
    assert result.stdout.splitlines()[-1] == "9 valid, 0 invalid, 0 warnings"


def _use_tgi(project: Path) -> None:
    recipe = project / "recipes" / "support_assistant.yaml"
    recipe.write_text(recipe.read_text().replace("  - serving: vllm\n", "  - serving: tgi\n"))


def test_generate_prints_each_warning_once_and_writes(project: Path) -> None:
    _use_tgi(project)
    result = run_cli("generate", "support_assistant", "--all-envs")
    assert result.exit_code == 0, result.stderr
    assert _warnings(result.stderr) == [TGI_WARNING]  # the same line in dev, staging and prod: printed once
    summary = result.stdout.splitlines()[-1]
    assert summary.endswith(", 1 warning: support-assistant (dev), support-assistant (prod), support-assistant (staging)")
    assert (project / "generated" / "support-assistant" / "prod" / "k8s" / "deployment.yaml").is_file()


def test_generate_strict_fails_on_the_warning_and_writes_nothing(project: Path) -> None:
    _use_tgi(project)
    before = tree_snapshot(project)
    result = run_cli("generate", "support_assistant", "--strict")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [TGI_WARNING, "generate --strict: 1 warning counted as errors; nothing written"]
    assert tree_snapshot(project) == before
