"""GitHub Actions workflows: checked by the workflow JSON Schema, actionlint and zizmor,
and structurally (pinned actions, no expressions in scripts, the job chain, runners,
least privilege, the same bytes for every env)."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from framework import api
from framework.targets import actionlint as actionlint_target, github
from tests.conftest import REPO
from tests.targets.conftest import ACTIONLINT_PACKAGE, VARIANTS, WORKFLOW_SCHEMA, load_variant, require

ACTIONLINT_RUNNER = Path(__file__).with_name("actionlint_run.cjs")
SHA_PIN = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(/[^@]*)?@[0-9a-f]{40}$")
USES_LINE = re.compile(r"^\s*(?:- )?uses: (\S+)(.*)$")
EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
GPU_LABELS = ["self-hosted", "linux", "gpu"]  # recipes/ci/github.yaml
DEFAULT_LABELS = ["ubuntu-latest"]

# Values the CLI's choice-like options take in the workflows.
FLAG_VALUES = {"--env": {"dev", "staging", "prod"}, "--target": {"local", "ray", "kubernetes"}}


# --- loading and running -------------------------------------------------------------
class WorkflowLoader(yaml.SafeLoader):
    """YAML as GitHub reads it: only true/false are booleans (`on:` stays a string)."""


WorkflowLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
WorkflowLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def load(text: str) -> dict:
    return yaml.load(text, Loader=WorkflowLoader)


def rendered(recipe) -> dict[str, str]:
    artifacts = github.render(recipe)
    assert [a.scope for a in artifacts] == ["workflows", "workflows"]
    files = {a.path: a.text for a in artifacts}
    assert sorted(files) == sorted([f"mlops-{recipe.name}.yml", "mlops-regenerate.yml"])
    return files


def pipeline_of(recipe) -> tuple[str, dict]:
    text = rendered(recipe)[f"mlops-{recipe.name}.yml"]
    return text, load(text)


def write(files: dict[str, str], root: Path) -> list[Path]:
    folder = root / ".github" / "workflows"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in sorted(files.items()):
        (folder / name).write_text(text, encoding="utf-8")
        paths.append(folder / name)
    return paths


def schema_errors(workflow: dict) -> list[str]:
    schema = json.loads(WORKFLOW_SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.Draft7Validator(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(workflow)]


def actionlint(paths: list[Path]) -> dict[str, list[dict]]:
    node = shutil.which("node")
    assert node, "node missing: actionlint runs on node"
    require(ACTIONLINT_PACKAGE)
    out = subprocess.run(
        [node, str(ACTIONLINT_RUNNER), str(ACTIONLINT_PACKAGE), *map(str, paths)],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    results = json.loads(out.stdout)
    assert sorted(results) == sorted(map(str, paths))  # every file was linted
    return results


def actionlint_problems(results: dict[str, list[dict]], custom_labels: set[str]) -> list[str]:
    """Every actionlint error, less "label is unknown" for the self-hosted runner labels
    the project's .github/actionlint.yaml lists: what actionlint, given that config, would
    accept (the WASM build reads no config file, so the config is applied here; see
    test_actionlint_config_covers_what_actionlint_flags)."""
    problems = []
    for file, errors in results.items():
        for error in errors:
            message = error["message"]
            label = re.match(r'label "([^"]+)" is unknown', message)
            if error["kind"] == "runner-label" and label and label.group(1) in custom_labels:
                continue
            problems.append(f"{Path(file).name}:{error['line']}:{error['column']}: {message} [{error['kind']}]")
    return problems


def actionlint_config(recipes) -> dict:
    return yaml.safe_load(actionlint_target.actionlint_text(recipes))


def zizmor_bin() -> Path:
    candidate = Path(sys.executable).parent / "zizmor"
    if not candidate.exists() and shutil.which("zizmor"):
        candidate = Path(shutil.which("zizmor"))
    return require(candidate)


def zizmor(paths: list[Path]) -> list[dict]:
    """zizmor's findings (regular persona, offline audits, no config file)."""
    out = subprocess.run(
        [str(zizmor_bin()), "--offline", "--no-config", "--strict-collection", "--format", "json",
         "--no-progress", *map(str, paths)],
        capture_output=True, text=True, timeout=120,
    )
    # 0: no findings; 10-14: findings by highest severity; anything else is a failure.
    assert out.returncode == 0 or 10 <= out.returncode <= 14, out.stderr
    return json.loads(out.stdout)


def serious(findings: list[dict]) -> list[str]:
    return [
        f"{f['ident']} ({f['determinations']['severity']}): {f['desc']} at "
        + ", ".join(
            f"{Path(loc['symbolic']['key']['Local']['verbatim_path']).name}:{loc['concrete']['location']['start_point']['row'] + 1}"
            for loc in f["locations"] if loc["symbolic"]["kind"] == "Primary"
        )
        for f in findings
        if f["determinations"]["severity"] in ("Medium", "High") and not f.get("ignored")
    ]


def all_steps(workflow: dict):
    """(job, step) in the order the jobs run (the file sorts its keys)."""
    rank = {job_id: i for i, job_id in enumerate(github.JOB_ORDER)}
    for job_id, job in sorted(workflow["jobs"].items(), key=lambda item: rank.get(item[0], -1)):
        for step in job.get("steps", []):
            yield job_id, step


def mlops_commands(workflow: dict) -> list[tuple[str, list[str]]]:
    """(job, argv) of every `mlops` invocation, up to a shell operator."""
    commands = []
    for job_id, step in all_steps(workflow):
        if "run" not in step:
            continue
        tokens = shlex.split(step["run"])
        for i, token in enumerate(tokens):
            if token == "mlops":
                argv = []
                for t in tokens[i + 1:]:
                    if t in ("|", "||", "&&", ";"):
                        break
                    argv.append(t)
                commands.append((job_id, argv))
    return commands


# --- every variant -------------------------------------------------------------------
def test_two_workflows_with_headers(recipe):
    files = rendered(recipe)
    pipeline = files[f"mlops-{recipe.name}.yml"]
    regenerate = files["mlops-regenerate.yml"]
    assert pipeline.startswith("# Generated by mlops ") and f"from recipe '{recipe.name}'" in pipeline.splitlines()[0]
    assert "Do not edit" in pipeline.splitlines()[1] and "Do not edit" in regenerate.splitlines()[1]
    assert recipe.environment not in pipeline.splitlines()[0]  # no env: one file for every env
    assert recipe.name not in regenerate  # one file for every recipe
    for text in files.values():
        assert text.endswith("\n") and "\t" not in text
        assert load(text)["name"]


def test_schema(recipe):
    for name, text in rendered(recipe).items():
        workflow = load(text)
        assert "on" in workflow and True not in workflow
        assert schema_errors(workflow) == [], name


def test_actionlint(recipe, tmp_path):
    results = actionlint(write(rendered(recipe), tmp_path))
    labels = set(actionlint_config([recipe])["self-hosted-runner"]["labels"])
    assert actionlint_problems(results, labels) == []


def test_actionlint_config_covers_what_actionlint_flags(tmp_path):
    """.github/actionlint.yaml (what generate writes, from every recipe) lists exactly
    the custom runner labels actionlint flags in the generated workflows, and exactly
    the repository variables they read (so actionlint catches a misspelled one)."""
    variants = sorted(VARIANTS)
    recipes = [load_variant(v) for v in variants]
    config = actionlint_config(recipes)
    assert sorted(config) == ["config-variables", "self-hosted-runner"]  # actionlint's own keys (docs/config.md)
    assert sorted(config["self-hosted-runner"]) == ["labels"]
    files = {}
    for variant, recipe in zip(variants, recipes):
        files.update({f"{variant}-{name}": text for name, text in rendered(recipe).items()})
    results = actionlint(write(files, tmp_path))
    flagged = {re.match(r'label "([^"]+)" is unknown', e["message"]).group(1)
               for errors in results.values() for e in errors if e["kind"] == "runner-label"}
    assert flagged == set(config["self-hosted-runner"]["labels"]) == {"gpu"}
    used = {m for text in files.values() for m in re.findall(r"\bvars\.([A-Za-z_][A-Za-z0-9_]*)", text)}
    assert used == set(config["config-variables"])
    committed = yaml.safe_load((REPO / ".github" / "actionlint.yaml").read_text(encoding="utf-8"))
    assert committed == actionlint_config([api.load_recipe(n, project=REPO).recipe for n in ("churn", "support_assistant")])


def test_zizmor(recipe, tmp_path):
    findings = zizmor(write(rendered(recipe), tmp_path))
    problems = serious(findings)
    assert problems == [], "\n".join(problems)


def test_actions_pinned_to_release_commits(recipe):
    pins = {a.repo: a for a in github.ACTIONS}
    for name, text in rendered(recipe).items():
        uses_lines = [USES_LINE.match(line) for line in text.splitlines() if USES_LINE.match(line)]
        assert uses_lines, name
        for match in uses_lines:
            ref, comment = match.group(1), match.group(2)
            assert SHA_PIN.match(ref), ref
            repo, sha = ref.split("@")
            assert pins[repo].sha == sha and comment == f" # {pins[repo].tag}", match.group(0)
            assert re.fullmatch(r"v\d+\.\d+\.\d+", pins[repo].tag)
        steps = [step for _, step in all_steps(load(text)) if "uses" in step]
        assert len(steps) == len(uses_lines)
        for step in steps:
            assert SHA_PIN.match(step["uses"]), step["uses"]
            if step["uses"].startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False


def test_no_expressions_in_scripts(recipe):
    for text in rendered(recipe).values():
        runs = [step["run"] for _, step in all_steps(load(text)) if "run" in step]
        assert runs
        for run in runs:
            assert "${{" not in run, run


TABULAR_NEEDS = {
    "build-image": None, "validate-data": None, "train": ["validate-data"], "evaluate": ["train"],
    "quality-gate": ["train", "evaluate"], "deploy-staging": ["build-image", "quality-gate"],
    "smoke-test": ["train", "deploy-staging"], "deploy-production": ["build-image", "smoke-test"],
}
RAG_NEEDS = {
    "build-image": None, "validate-data": None, "evaluate": ["validate-data"], "deploy-staging": ["build-image", "evaluate"],
    "smoke-test": ["deploy-staging"], "deploy-production": ["build-image", "smoke-test"],
}


def expected_needs(recipe) -> dict:
    return TABULAR_NEEDS if recipe.model.kind == "tabular" else RAG_NEEDS


def test_job_chain_and_every_job(recipe):
    _, workflow = pipeline_of(recipe)
    jobs = workflow["jobs"]
    needs = expected_needs(recipe)
    assert sorted(jobs) == sorted(needs)
    assert {job_id: job.get("needs") for job_id, job in jobs.items()} == needs
    for job_id, job in jobs.items():
        assert isinstance(job["timeout-minutes"], int) and 0 < job["timeout-minutes"] <= 360, job_id
        steps = job["steps"]
        assert steps[0]["uses"].startswith("actions/checkout@")
        if job_id == "build-image":
            continue
        assert steps[1]["uses"].startswith("actions/setup-python@")
        assert steps[1]["with"] == {"python-version": recipe.ci.python_version, "cache": "pip", "cache-dependency-path": "pyproject.toml"}
        extras = github.install_extras(recipe)
        assert steps[2]["run"] == (f"python -m pip install -e '.[{','.join(extras)}]'" if extras else "python -m pip install -e .")
        assert any(step.get("run", "").startswith("mlops ") for step in steps[3:]), job_id
        if job_id != "train":
            assert job["runs-on"] == list(recipe.ci.runners.default), job_id


def test_build_image_job(recipe):
    _, workflow = pipeline_of(recipe)
    job = workflow["jobs"]["build-image"]
    assert job["permissions"] == {"contents": "read", "packages": "write"}
    uses = [step["uses"].split("@")[0] for step in job["steps"] if "uses" in step]
    assert uses == ["actions/checkout", "docker/setup-buildx-action", "docker/login-action", "docker/build-push-action"]
    build = job["steps"][-1]["with"]
    repository = recipe.deploy.image.rsplit(":", 1)[0]
    assert build["tags"] == f"{repository}:${{{{ steps.tag.outputs.tag }}}}"
    assert build["push"] == "${{ github.event_name == 'push' }}" and build["file"] == "Dockerfile"
    assert build["target"] == ("cuda" if github.needs_gpu_image(recipe) else "cpu")
    assert "REVISION=${{ github.sha }}" in build["build-args"]
    assert job["steps"][1]["run"] == 'echo "tag=${GITHUB_SHA}%s" >> "$GITHUB_OUTPUT"' % ("-cuda" if build["target"] == "cuda" else "")
    assert job["outputs"] == {"tag": "${{ steps.tag.outputs.tag }}"}
    login = next(step for step in job["steps"] if step.get("uses", "").startswith("docker/login-action@"))
    assert login["if"] == "github.event_name == 'push'" and login["with"]["registry"] == "ghcr.io"
    # later jobs deploy that exact tag
    for job_id in ("deploy-staging", "deploy-production"):
        assert workflow["jobs"][job_id]["env"]["IMAGE_TAG"] == "${{ needs.build-image.outputs.tag }}"
        assert any('--image-tag "$IMAGE_TAG"' in step.get("run", "") for step in workflow["jobs"][job_id]["steps"])


def test_least_privilege_and_concurrency(recipe):
    for text in rendered(recipe).values():
        workflow = load(text)
        assert workflow["permissions"] == {"contents": "read"}
        assert all("permissions" not in job for job_id, job in workflow["jobs"].items() if job_id != "build-image")
        assert "${{ github.ref }}" in workflow["concurrency"]["group"]
    _, workflow = pipeline_of(recipe)
    assert workflow["concurrency"]["group"] == f"mlops-{recipe.name}-${{{{ github.ref }}}}"
    assert workflow["concurrency"]["cancel-in-progress"] == "${{ github.event_name == 'pull_request' }}"
    assert workflow["defaults"] == {"run": {"shell": "bash"}}  # bash -eo pipefail


def test_triggers(recipe):
    _, workflow = pipeline_of(recipe)
    on = workflow["on"]
    assert sorted(on) == ["pull_request", "push", "workflow_dispatch"]
    assert on["push"]["branches"] == recipe.ci.branches
    paths = on["push"]["paths"]
    assert on["pull_request"]["paths"] == paths and len(set(paths)) == len(paths)
    assert set(recipe.ci.paths) <= set(paths)
    assert "recipes/*/**" in paths and f".github/workflows/mlops-{recipe.name}.yml" in paths and "Dockerfile" in paths
    assert "recipes/**" not in paths  # other recipes' files do not trigger this pipeline


def test_deploys_only_on_push_into_environments(recipe):
    _, workflow = pipeline_of(recipe)
    jobs = workflow["jobs"]
    environments = [e.name for e in recipe.ci.environments]
    assert jobs["deploy-staging"]["environment"] == environments[0] == "staging"
    assert jobs["deploy-production"]["environment"] == environments[-1] == "production"
    for job_id in ("deploy-staging", "smoke-test", "deploy-production"):
        assert jobs[job_id]["if"] == "github.event_name == 'push'"
    for job_id in set(jobs) - {"deploy-staging", "smoke-test", "deploy-production"}:
        assert "if" not in jobs[job_id] and "environment" not in jobs[job_id]
    if "quality-gate" in jobs:  # the gate promotes (alias candidate) only what a push deploys
        gate_steps = [s for s in jobs["quality-gate"]["steps"] if s.get("run", "").startswith("mlops gate")]
        assert [(s["if"], s["run"].endswith(" --promote")) for s in gate_steps] == [
            ("github.event_name != 'push'", False), ("github.event_name == 'push'", True)]


def test_secrets_and_variables_only_through_env(recipe):
    text, workflow = pipeline_of(recipe)
    expected = {name: f"${{{{ secrets.{name} }}}}" for name in recipe.deploy.secrets}
    assert expected  # the examples reference MLFLOW_TRACKING_TOKEN
    for job_id, job in workflow["jobs"].items():
        env = job.get("env", {})
        secret_env = {k: v for k, v in env.items() if "secrets." in v}
        on_ray = recipe.training is not None and recipe.training.engine == "ray"
        extra = {"train": {"RAY_AUTH_TOKEN" if on_ray else "KUBECONFIG_CONTENT"}, "deploy-staging": {"KUBECONFIG_CONTENT"},
                 "deploy-production": {"KUBECONFIG_CONTENT"}}.get(job_id, set())
        if job_id == "build-image":
            assert env == {}
        else:
            assert {k: v for k, v in secret_env.items() if k not in extra} == expected, job_id
            assert set(secret_env) - set(expected) == extra, job_id
        if job_id == "train" and on_ray:
            assert env["RAY_ADDRESS"] == "${{ vars.RAY_ADDRESS }}"
        if job_id in ("train", "evaluate", "quality-gate", "smoke-test") and recipe.model.kind == "tabular":
            assert env["MLFLOW_TRACKING_URI"] == "${{ vars.MLFLOW_TRACKING_URI }}"
    # every expression in the file is one of: an env value, an output, the concurrency keys, an if
    expressions = set(EXPRESSION.findall(text))
    allowed = {f"secrets.{name}" for name in recipe.deploy.secrets} | {f"vars.{name}" for name in github.variables(recipe)} | {
        "secrets.RAY_AUTH_TOKEN", "secrets.KUBECONFIG", "secrets.GITHUB_TOKEN", "github.actor", "github.ref", "github.sha",
        "github.server_url", "github.repository", "github.event_name == 'pull_request'", "github.event_name == 'push'",
        "always()", "steps.tag.outputs.tag", "steps.train.outputs.run-id", "steps.train.outputs.model-version",
        "needs.train.outputs.model-version", "needs.build-image.outputs.tag",
    }
    assert expressions <= allowed, expressions - allowed


def _cli_options(argv: list[str]) -> set[str]:
    """The options the real CLI command of argv declares (typer -> click)."""
    import typer.main

    from framework.cli import app

    command = typer.main.get_command(app)
    for word in argv:
        if word.startswith("-") or not hasattr(command, "commands") or word not in command.commands:
            break
        command = command.commands[word]
    return {opt for param in command.params for opt in getattr(param, "opts", []) if opt.startswith("--")}


def test_commands_are_the_documented_cli(recipe):
    _, workflow = pipeline_of(recipe)
    commands = mlops_commands(workflow)
    ref = github.recipe_ref(recipe)
    gate = f"gate {ref} --env staging --version $MODEL_VERSION"
    deploy = "--target kubernetes --skip-training --image-tag $IMAGE_TAG" if recipe.model.kind == "tabular" else \
        "--target kubernetes --image-tag $IMAGE_TAG"
    check = [("validate-data", f"validate {ref} --all-envs"),
             ("validate-data", f"check-data {ref} --env staging --report-dir mlops-reports/data")]
    if recipe.model.kind == "tabular":
        train = "--target ray --address $RAY_ADDRESS" if recipe.training.engine == "ray" else \
            "--target kubernetes --training-only"
        middle = [
            ("train", f"apply {ref} --env staging {train} --register-only"),
            ("evaluate", f"evaluate {ref} --env staging --version $MODEL_VERSION"),
            ("quality-gate", gate), ("quality-gate", f"{gate} --promote"),
        ]
        smoke = f"smoke {ref} --env staging --url $SMOKE_URL --version $MODEL_VERSION"
    else:
        middle = [("evaluate", f"evaluate {ref} --env staging")]
        smoke = f"smoke {ref} --env staging --url $SMOKE_URL"
    assert [(job, " ".join(argv)) for job, argv in commands] == [
        *check, *middle,
        ("deploy-staging", f"apply {ref} --env staging {deploy}"),
        ("smoke-test", smoke),
        ("deploy-production", f"apply {ref} --env prod {deploy}"),
    ]
    regenerate = load(rendered(recipe)["mlops-regenerate.yml"])
    assert [" ".join(argv) for _, argv in mlops_commands(regenerate)] == ["schema --check", "generate --all-envs --check"]
    for _, argv in commands + mlops_commands(regenerate):
        flags = {t for t in argv if t.startswith("--")}
        assert flags <= _cli_options(argv), (argv, flags - _cli_options(argv))
        for flag, values in FLAG_VALUES.items():
            if flag in argv:
                assert argv[argv.index(flag) + 1] in values, argv


# --- runners ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("variant", "labels"),
    [
        ("churn-ray-gpu", GPU_LABELS),
        ("churn-pytorchjob", GPU_LABELS),
        ("churn-dev", DEFAULT_LABELS),
        ("churn-prod", DEFAULT_LABELS),
    ],
)
def test_train_runner(variant, labels):
    recipe = load_variant(variant)
    assert recipe.ci.runners.gpu == GPU_LABELS and recipe.ci.runners.default == DEFAULT_LABELS
    _, workflow = pipeline_of(recipe)
    assert workflow["jobs"]["train"]["runs-on"] == labels
    others = {job_id: job["runs-on"] for job_id, job in workflow["jobs"].items() if job_id != "train"}
    assert set(map(tuple, others.values())) == {tuple(DEFAULT_LABELS)}


def test_gpu_training_without_gpu_runner_uses_default():
    recipe = load_variant("churn-ray-gpu")
    no_gpu_runner = recipe.model_copy(update={"ci": recipe.ci.model_copy(update={"runners": recipe.ci.runners.model_copy(update={"gpu": None})})})
    _, workflow = pipeline_of(no_gpu_runner)
    assert workflow["jobs"]["train"]["runs-on"] == DEFAULT_LABELS


def test_train_timeout_follows_training_timeout():
    gpu = load_variant("churn-pytorchjob")  # training.timeout 4h
    cpu = load_variant("churn-dev")  # training.timeout 1h
    assert pipeline_of(gpu)[1]["jobs"]["train"]["timeout-minutes"] == 4 * 60 + github.TRAIN_TIMEOUT_SETUP
    assert pipeline_of(cpu)[1]["jobs"]["train"]["timeout-minutes"] == 60 + github.TRAIN_TIMEOUT_SETUP


# --- per recipe, not per env -------------------------------------------------------------
RECIPE_SETS = sorted({(name, tuple(overrides)) for name, _, overrides in VARIANTS.values()})


@pytest.mark.parametrize(("name", "overrides"), RECIPE_SETS, ids=[f"{n}{''.join(' ' + o for o in ov)}" for n, ov in RECIPE_SETS])
def test_every_env_gives_the_same_bytes(name, overrides):
    envs = api.recipe_envs(name, REPO)
    assert sorted(envs) == ["dev", "prod", "staging"]
    outputs = {}
    for env in envs:
        recipe = api.load_recipe(name, env=env, overrides=list(overrides), project=REPO).recipe
        assert recipe.environment == env
        outputs[env] = rendered(recipe)
        assert rendered(recipe) == outputs[env]  # deterministic
    first = outputs[envs[0]]
    for env in envs[1:]:
        assert outputs[env] == first, f"{name} {env} differs from {envs[0]}"


def test_regenerate_is_the_same_for_every_recipe():
    texts = {variant: rendered(load_variant(variant))["mlops-regenerate.yml"] for variant in VARIANTS}
    assert len(set(texts.values())) == 1
    workflow = load(next(iter(texts.values())))
    assert sorted(workflow["on"]) == ["pull_request", "push", "workflow_dispatch"]
    assert workflow["on"]["push"] == {"branches": ["main"]}
    assert "paths" not in (workflow["on"]["pull_request"] or {})  # every PR


# --- the checks themselves catch problems --------------------------------------------------
BAD_WORKFLOW = """\
on: pull_request_target
jobs:
  build:
    runs-on: [ubuntu-latest]
    steps:
      - uses: actions/checkout@v4
      - run: echo "${{ github.event.pull_request.title }}"
"""


def test_checks_catch_a_bad_workflow(tmp_path):
    (path,) = write({"bad.yml": BAD_WORKFLOW}, tmp_path)
    workflow = load(BAD_WORKFLOW)
    assert schema_errors(workflow) == []
    misspelled = {**workflow, "jobs": {"build": {**workflow["jobs"]["build"], "timeout-minute": 5}}}
    assert any("timeout-minute" in e for e in schema_errors(misspelled)), schema_errors(misspelled)
    problems = actionlint_problems(actionlint([path]), set())
    assert any("potentially untrusted" in p for p in problems), problems
    idents = {f.split(" ")[0] for f in serious(zizmor([path]))}
    assert {"unpinned-uses", "template-injection", "artipacked", "dangerous-triggers"} <= idents, idents
    assert not SHA_PIN.match(workflow["jobs"]["build"]["steps"][0]["uses"])


def test_the_install_step_takes_the_extras_the_recipes_jobs_import() -> None:
    def installs(recipe_name: str, *overrides: str) -> set[str]:
        recipe = api.load_recipe(recipe_name, overrides=list(overrides), project=REPO).recipe
        _, workflow = pipeline_of(recipe)
        return {s["run"] for _, s in all_steps(workflow) if s.get("name") == "Install"}

    assert installs("churn") == {"python -m pip install -e ."}
    assert installs("churn_features") == {"python -m pip install -e '.[feast]'"}
    assert installs("churn", "+data.version={rev: v2}", "+tracking.backends=[mlflow,wandb]") == {
        "python -m pip install -e '.[dvc,wandb]'"}
