"""The parse cache: a warm run answers as a cold one, and every kind of input a recipe's
answer depends on (its files, groups, env overlay, overrides, environment variables, the
folders' listings, a Feast repository, the framework) makes it compose again when changed.
Through the public API and the CLI, on a copy of the project."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import framework
from framework import api
from framework.cli import fast, main
from framework.errors import RecipeError
from framework.recipe import fingerprint
from tests.conftest import REPO, run_cli

ENVS = ("dev", "staging", "prod")
RECIPES = ("churn", "churn_features", "support_assistant")


@pytest.fixture
def cached(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The project with the cache on (whatever the caller's environment says) and its files
    older than the cache's 'changed while read' window."""
    monkeypatch.delenv("MLOPS_NO_CACHE", raising=False)
    age(project)
    return project


@pytest.fixture
def composed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The recipes composed with Hydra (not answered from the cache), in order."""
    from framework.recipe import compose

    calls: list[str] = []
    real = compose.compose_recipe

    def spy(project, recipe, *args, **kwargs):
        calls.append(recipe)
        return real(project, recipe, *args, **kwargs)

    monkeypatch.setattr(compose, "compose_recipe", spy)
    return calls


def age(root: Path) -> None:
    """Files and folders as if written an hour ago."""
    past = time.time() - 3600
    for path in [root, *root.rglob("*")]:
        os.utime(path, (past, past))


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


def entries(root: Path, kind: str = "recipes") -> list[Path]:
    return sorted((root / ".mlops" / "cache" / kind).glob("*.json"))


def cold(monkeypatch: pytest.MonkeyPatch, call):
    with monkeypatch.context() as m:
        m.setenv("MLOPS_NO_CACHE", "1")
        return call()


def test_a_warm_run_answers_as_the_cold_one_without_composing(cached: Path, composed: list[str],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    first = run_cli("validate", "--all-envs")
    assert len(composed) == 9 and len(entries(cached)) == 9
    warm = run_cli("validate", "--all-envs")
    assert len(composed) == 9  # nothing composed again
    assert (warm.exit_code, warm.stdout, warm.stderr) == (first.exit_code, first.stdout, first.stderr)
    for recipe in RECIPES:
        for env in ENVS:
            for provenance in (False, True):
                shown = api.show(recipe, env=env, provenance=provenance)
                fresh = cold(monkeypatch, lambda: api.show(recipe, env=env, provenance=provenance))
                assert shown.lines() == fresh.lines(), (recipe, env, provenance)
    assert len(composed) == 9 + 18  # only the cold calls composed


def test_an_edited_recipe_file_is_composed_again(cached: Path, composed: list[str]) -> None:
    assert api.show("churn").resolved["owner"] == "ml-platform@example.com"
    edit(cached / "recipes" / "churn.yaml", "owner: ml-platform@example.com", "owner: data-team@example.com")
    assert api.show("churn").resolved["owner"] == "data-team@example.com"
    assert len(composed) == 2  # a file changed a moment ago may have changed while read: not kept
    age(cached)
    api.show("churn")
    assert len(composed) == 3 and api.show("churn").resolved["owner"] == "data-team@example.com"
    assert len(composed) == 3


def test_an_edited_group_file_is_composed_again(cached: Path) -> None:
    assert api.show("churn").resolved["model"]["hidden_sizes"] == [64, 32]
    edit(cached / "recipes" / "model" / "mlp.yaml", "hidden_sizes: [64, 32]", "hidden_sizes: [16]")
    assert api.show("churn").resolved["model"]["hidden_sizes"] == [16]


def test_an_edited_env_overlay_is_composed_again(cached: Path) -> None:
    assert api.show("churn", env="prod").resolved["deploy"]["namespace"] == "ml-prod"
    edit(cached / "recipes" / "env" / "prod.yaml", "namespace: ml-prod", "namespace: ml-production")
    assert api.show("churn", env="prod").resolved["deploy"]["namespace"] == "ml-production"
    assert api.show("churn", env="dev").resolved["deploy"]["namespace"] != "ml-production"


def test_each_override_is_its_own_answer(cached: Path, composed: list[str]) -> None:
    assert api.show("churn", overrides=["training.epochs=3"]).resolved["training"]["epochs"] == 3
    assert api.show("churn", overrides=["training.epochs=4"]).resolved["training"]["epochs"] == 4
    assert api.show("churn", overrides=["training.epochs=3"]).resolved["training"]["epochs"] == 3
    assert len(composed) == 2


def test_an_environment_variable_an_interpolation_reads(cached: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    default = "http://mlflow.ml-platform.svc.cluster.local:5000"
    assert api.show("churn", env="prod").resolved["tracking"]["uri"] == default  # env/prod.yaml: ${oc.env:...}
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://elsewhere:5000")
    assert api.show("churn", env="prod").resolved["tracking"]["uri"] == "http://elsewhere:5000"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert api.show("churn", env="prod").resolved["tracking"]["uri"] == default
    override = ["description=${oc.env:MLOPS_TEST_DESCRIPTION,plain}"]  # in an override too
    assert api.show("churn", overrides=override).resolved["description"] == "plain"
    monkeypatch.setenv("MLOPS_TEST_DESCRIPTION", "from the environment")
    assert api.show("churn", overrides=override).resolved["description"] == "from the environment"


def test_a_new_group_option_file_is_seen(cached: Path) -> None:
    """churn's defaults name `optional data/location: churn_${env}`: dev has none, until one appears."""
    assert api.show("churn").resolved["data"]["source"]["uri"] == "data/churn.csv"
    (cached / "recipes" / "data" / "location" / "churn_dev.yaml").write_text(
        "# @package data\nsource:\n  uri: data/churn_dev.csv\n")
    assert api.show("churn").resolved["data"]["source"]["uri"] == "data/churn_dev.csv"


def test_a_new_option_changes_the_options_an_error_lists(cached: Path) -> None:
    result = run_cli("validate", "churn", "serving=trition")
    assert result.stderr.splitlines()[-1] == (
        "<override>: serving: unknown option 'trition' (did you mean 'triton'?); options: ray_serve, ray_serve_llm, sglang, "
        "tgi, triton, vllm")
    (cached / "recipes" / "serving" / "triton2.yaml").write_text((cached / "recipes" / "serving" / "triton.yaml").read_text())
    assert run_cli("validate", "churn", "serving=trition").stderr.splitlines()[-1].endswith(
        "options: ray_serve, ray_serve_llm, sglang, tgi, triton, triton2, vllm")


def test_an_edited_feast_repository_is_read_again(cached: Path) -> None:
    assert run_cli("validate", "churn_features").exit_code == 0
    edit(cached / "feature_repo" / "features.py", 'Field(name="payment_method"', 'Field(name="payment_methods"')
    result = run_cli("validate", "churn_features")
    assert result.exit_code == 1
    assert "payment_method is not read from feature view 'customer_features' (did you mean 'payment_methods'?)" in result.stderr


def test_errors_are_the_same_every_time_and_not_cached(cached: Path) -> None:
    edit(cached / "recipes" / "model" / "mlp.yaml", "dropout: 0.1", "dropout: 1.5")
    runs = [run_cli("validate", "churn") for _ in range(2)]
    assert runs[0].exit_code == runs[1].exit_code == 1
    assert runs[0].stderr == runs[1].stderr and "model.dropout" in runs[0].stderr
    assert entries(cached) == []


def test_another_framework_version_composes_again(cached: Path, composed: list[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    api.validate(["churn"])
    monkeypatch.setattr(framework, "__version__", "99.0.0")
    api.validate(["churn"])
    assert len(composed) == 2 and len(entries(cached)) == 2


def test_the_framework_source_is_part_of_the_key() -> None:
    source = REPO / "framework" / "recipe" / "suggest.py"
    stat = source.stat()
    before = fingerprint.code.__wrapped__()
    try:
        os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
        assert fingerprint.code.__wrapped__() != before
    finally:
        os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_a_corrupt_cache_is_recomputed(cached: Path, composed: list[str]) -> None:
    first = run_cli("validate", "--all-envs")
    for path, garbage in zip(entries(cached), ("{", "[]", "\x00\x01", '{"format": 1}', "") * 2):
        path.write_text(garbage)
    again = run_cli("validate", "--all-envs")
    assert (again.exit_code, again.stdout, again.stderr) == (first.exit_code, first.stdout, first.stderr)
    assert len(composed) == 18
    assert all(isinstance(json.loads(p.read_text()), dict) for p in entries(cached))


def test_an_unwritable_cache_is_no_error(cached: Path, composed: list[str]) -> None:
    (cached / ".mlops").mkdir()
    (cached / ".mlops" / "cache").write_text("a file where the cache's folder would be")
    for _ in range(2):
        result = run_cli("validate", "churn")
        assert (result.exit_code, result.stdout) == (0, "ok       churn (dev)\n1 valid, 0 invalid, 0 warnings\n")
    assert run_cli("generate", "churn").exit_code == 0
    assert run_cli("generate", "churn", "--check").exit_code == 0
    assert composed.count("churn") == 4  # nothing cached


def test_a_folder_linked_into_itself_is_listed_once(cached: Path) -> None:
    os.symlink(cached / "recipes", cached / "recipes" / "model" / "loop")
    age(cached)
    for _ in range(2):
        assert run_cli("validate", "churn").exit_code == 0
    assert len(entries(cached)) == 1


def test_no_cache_neither_reads_nor_writes(cached: Path, composed: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_NO_CACHE", "1")
    api.validate(["churn"])
    assert entries(cached) == []
    monkeypatch.setenv("MLOPS_NO_CACHE", "")
    api.validate(["churn"])
    assert len(entries(cached)) == 1
    assert run_cli("validate", "churn", "--no-cache").exit_code == 0  # sets MLOPS_NO_CACHE (restored after the test)
    assert composed == ["churn"] * 3


def test_generate_check_from_the_cache_still_compares_with_the_disk(cached: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    api.generate(all_envs=True)
    assert run_cli("generate", "--all-envs", "--check").exit_code == 0

    def no_render(*args, **kwargs):
        raise AssertionError("rendered although nothing changed")

    with monkeypatch.context() as m:
        m.setattr("framework.generate.render_env", no_render)
        result = run_cli("generate", "--all-envs", "--check")
        assert result.exit_code == 0 and result.stdout.startswith("up to date, 0 warnings: churn (dev), churn (prod)")
    resolved = cached / "generated" / "churn" / "dev" / "recipe.resolved.yaml"
    text = resolved.read_text()
    resolved.write_text(text + "# edited\n")
    drifted = run_cli("generate", "--all-envs", "--check")
    assert drifted.exit_code == 2
    assert "generated/churn/dev/recipe.resolved.yaml: differs from the recipes" in drifted.stderr
    assert "+# edited" not in drifted.stderr and "-# edited" in drifted.stderr
    resolved.write_text(text)
    (resolved.parent / "extra.yaml").write_text("x: 1\n")
    assert "extra.yaml: is stale (no recipe generates it)" in run_cli("generate", "--all-envs", "--check").stderr
    (resolved.parent / "extra.yaml").unlink()
    resolved.unlink()
    assert "recipe.resolved.yaml: would be added" in run_cli("generate", "--all-envs", "--check").stderr
    assert run_cli("generate", "--all-envs").exit_code == 0 and resolved.read_text() == text
    edit(cached / "recipes" / "env" / "prod.yaml", "namespace: ml-prod", "namespace: ml-production")
    assert "generated/churn/prod/" in run_cli("generate", "--all-envs", "--check").stderr


def test_a_warm_validate_imports_neither_hydra_nor_the_models(cached: Path) -> None:
    code = ("import sys; from framework.cli import main; sys.argv = ['mlops', 'validate', 'churn']\n"
            "try: main()\nexcept SystemExit: pass\n"
            "print(sorted(m for m in ('hydra', 'omegaconf', 'pydantic', 'yaml', 'typer', 'framework.recipe.recipe') "
            "if m in sys.modules))")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    runs = [subprocess.run([sys.executable, "-c", code], cwd=cached, capture_output=True, text=True, env=env, check=True)
            for _ in range(2)]
    said = ["ok       churn (dev)", "1 valid, 0 invalid, 0 warnings"]
    assert runs[0].stdout.splitlines() == [*said, "['framework.recipe.recipe', 'hydra', 'omegaconf', 'pydantic', 'yaml']"]
    assert runs[1].stdout.splitlines() == [*said, "[]"]


def test_warnings_come_from_the_cache_too(cached: Path) -> None:
    """A deprecated value warns warm as cold (the entry keeps the warnings), and --strict fails both."""
    runs = [run_cli("validate", "support_assistant", "serving=tgi") for _ in range(2)]
    assert runs[0].stderr == runs[1].stderr and "serving.backend: warning: serving.backend tgi is deprecated" in runs[1].stderr
    assert [r.exit_code for r in runs] == [0, 0] and runs[1].stdout.endswith("1 valid, 0 invalid, 1 warning\n")
    assert run_cli("validate", "support_assistant", "serving=tgi", "--strict").exit_code == 1


def test_interpolations_that_are_not_pure_are_not_cached() -> None:
    assert fingerprint.env_names(["uri: ${oc.env:MLFLOW_TRACKING_URI,http://x:5000}", "a: ${b.c}"]) == [
        "MLFLOW_TRACKING_URI"]
    assert fingerprint.env_names(["stamp: ${now:%Y-%m-%d}"]) is None
    assert fingerprint.env_names(["a: ${oc.env:${name}}"]) is None
    assert fingerprint.env_names(["a: ${oc.env:'QUOTED'}", "b: 1"]) == ["QUOTED"]


# --- the CLI's fast path: plain validate/generate without typer --------------------------
@pytest.mark.parametrize("argv", [
    [], ["show", "churn"], ["validate", "--help"], ["validate", "-edev"], ["validate", "--env"],
    ["validate", "--env", "--all-envs"], ["validate", "-e", "a", "--env", "b"], ["validate", "--all-envs", "--all-envs"],
    ["validate", "--check"], ["generate", "--bogus"], ["validate", "--", "churn"], ["validate", "--env="],
])
def test_anything_but_plain_arguments_is_left_to_typer(argv: list[str]) -> None:
    assert fast.parse(argv) is None


def test_plain_arguments_are_read_as_typer_reads_them() -> None:
    assert fast.parse(["validate", "churn", "-e", "prod", "training.epochs=3", "--all-envs", "~ci"]) == (
        "validate", ["churn", "training.epochs=3", "~ci"], {"--all-envs"}, "prod")
    assert fast.parse(["generate", "--check", "--env=staging", "--no-cache"]) == (
        "generate", [], {"--check", "--no-cache"}, "staging")


@pytest.mark.parametrize("argv", [
    ("validate", "churn"), ("validate", "--all-envs"), ("validate", "churn", "serving=trition"), ("validate", "chrun"),
    ("validate", "churn", "--env=prod", "training.epochs=3"), ("validate", "churn", "training.epochs=x"),
    ("generate", "churn", "--check"), ("generate", "--all-envs", "--check", "-e", "prod"),
])
def test_the_fast_path_says_what_typer_says(cached: Path, argv: tuple[str, ...], capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    expected = run_cli(*argv)
    monkeypatch.setattr(sys, "argv", ["mlops", *argv])
    with pytest.raises(SystemExit) as exited:
        main()
    out = capsys.readouterr()
    assert (exited.value.code, out.out, out.err) == (expected.exit_code, expected.stdout, expected.stderr)


def test_a_recipe_error_raises_through_the_api(cached: Path) -> None:
    with pytest.raises(RecipeError, match="unknown recipe 'chrun'"):
        api.load_recipe("chrun")
