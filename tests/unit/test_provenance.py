"""Provenance: the file and line that set each key, overrides as <override>."""

from __future__ import annotations

from framework import api
from tests.conftest import REPO, run_cli


def _line_of(relative: str, text: str) -> int:
    lines = (REPO / relative).read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


def _sources() -> dict[str, str]:
    return {leaf.path: leaf.source for leaf in api.show("churn", project=REPO).leaves}


def test_keys_point_at_the_group_file_line_that_set_them() -> None:
    sources = _sources()
    assert sources["training.epochs"] == f"recipes/training/ray_cpu.yaml:{_line_of('recipes/training/ray_cpu.yaml', 'epochs:')}"
    assert sources["name"] == f"recipes/churn.yaml:{_line_of('recipes/churn.yaml', 'name: churn')}"
    assert sources["ci.paths.1"] == f"recipes/churn.yaml:{_line_of('recipes/churn.yaml', '- data/churn.csv')}"


def test_env_overlay_wins_over_group_files() -> None:
    sources = _sources()
    assert sources["deploy.namespace"] == f"recipes/env/dev.yaml:{_line_of('recipes/env/dev.yaml', 'namespace:')}"
    assert sources["serving.replicas.min"].startswith("recipes/env/dev.yaml:")
    assert sources["serving.replicas.target_utilization"].startswith("recipes/serving/triton.yaml:")


def test_model_defaults_are_marked() -> None:
    assert _sources()["serving.port"] == "(default)"


def test_overrides_are_marked_and_replace_lists() -> None:
    result = api.show("churn", overrides=["rollout.steps=[50,100]", "training.epochs=2"], project=REPO)
    sources = {leaf.path: leaf.source for leaf in result.leaves}
    assert sources["training.epochs"] == "<override>"
    assert "rollout.steps.2" not in sources
    assert sources["rollout.steps.0"] == "<override>"


def test_group_override_takes_lines_from_the_chosen_option() -> None:
    sources = {leaf.path: leaf.source for leaf in api.show("churn", overrides=["serving=ray_serve"], project=REPO).leaves}
    assert sources["serving.max_ongoing_requests"].startswith("recipes/serving/ray_serve.yaml:")


def test_show_provenance_cli_lists_source_key_and_value(project) -> None:
    result = run_cli("show", "churn", "--provenance", "training.epochs=4")
    assert result.exit_code == 0, result.stderr
    line = next(l for l in result.stdout.splitlines() if " training.epochs:" in l)
    assert line.split() == ["<override>", "training.epochs:", "4"]
