"""`python -m framework.runtime.serving.fetch_model`, the Triton pod's init container: fills a
model repository from the registry with the version the aliases say; from the embedded
sqlite store, and from the team's MLflow server over HTTP (as staging and prod run it),
behind a gateway that wants the token the pod gets from its Secret."""

from __future__ import annotations

import base64
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from framework import api
from framework.contracts.resolved import resolved_recipe_yaml
from framework.contracts.triton import model_config
from framework.runtime.serving.fetch_model import choose_version, main
from framework.runtime.serving.repository import load_repository
from framework.targets import kubernetes
from tests.conftest import REPO
from tests.mlflow_server import AuthProxy, server_overrides, unique_name
from tests.ray_head import free_port
from tests.rollout.conftest import load, register, set_aliases

GENERATED = REPO / "generated" / "churn"
RESOLVED = GENERATED / "dev" / "recipe.resolved.yaml"
CONFIG = GENERATED / "dev" / "triton" / "churn" / "config.pbtxt"


@dataclass(frozen=True)
class Registry:
    recipe: Any
    resolved: Path  # the recipe.resolved.yaml fetch_model reads
    state: Path
    uri: str


@pytest.fixture(scope="module", params=["sqlite", pytest.param("server", marks=pytest.mark.slow)])
def registry(request, tmp_path_factory, churn_recipe, model_files) -> Registry:
    """Versions 1 and 2 of the dev recipe's model: in the embedded store (the generated
    recipe), or on the shared server (the recipe naming it, and a model of its own)."""
    folder = tmp_path_factory.mktemp("fetch")
    recipe, resolved = churn_recipe, RESOLVED
    if request.param == "server":
        recipe = load(*server_overrides(request.getfixturevalue("mlflow_server"), unique_name("churn")))
        resolved = write_resolved(recipe, folder)
    uri, versions = register(recipe, folder / ".mlops", [model_files["1"], model_files["2"]])
    assert versions == ["1", "2"]
    return Registry(recipe, resolved, folder / ".mlops", uri)


def write_resolved(recipe, folder: Path) -> Path:
    """The file `mlops generate` writes for recipe."""
    path = folder / "recipe.resolved.yaml"
    path.write_text(resolved_recipe_yaml(recipe), encoding="utf-8")
    return path


def fetch(registry: Registry, dest: Path, *extra: str, resolved: Path | None = None) -> int:
    return main([str(resolved or registry.resolved), str(dest), "--state-dir", str(registry.state), *extra])


def with_tracking(recipe, **changes):
    return recipe.model_copy(update={"tracking": recipe.tracking.model_copy(update=changes)})


@pytest.mark.parametrize(
    "aliases, wanted, chosen",
    [
        ({"champion": "1", "candidate": "2", "rejected": None}, "auto", ("candidate", "2")),
        ({"champion": "1", "candidate": "2", "rejected": "2"}, "auto", ("champion", "1")),
        ({"champion": "1", "candidate": None, "rejected": None}, "auto", ("champion", "1")),
        ({"champion": None, "candidate": "2", "rejected": "2"}, "auto", None),
        ({"champion": "1", "candidate": "2", "rejected": None}, "champion", ("champion", "1")),
        ({"champion": None, "candidate": "2", "rejected": None}, "champion, candidate", ("candidate", "2")),
    ],
)
def test_which_version_a_pod_serves(aliases, wanted, chosen):
    assert choose_version(aliases, wanted) == chosen


def test_fills_tritons_layout_with_the_candidate(registry, model_files, tmp_path, capsys):
    set_aliases(registry.recipe, registry.uri, champion="1", candidate="2")
    assert fetch(registry, tmp_path / "models") == 0
    model_dir = tmp_path / "models" / "churn"
    assert capsys.readouterr().out == f"fetch_model: {registry.recipe.registered_model} version 2 (candidate) -> {model_dir}\n"
    assert sorted(p.name for p in model_dir.iterdir()) == ["2", "config.pbtxt"]
    assert (model_dir / "config.pbtxt").read_text() == CONFIG.read_text()  # what generate renders
    assert (model_dir / "2" / "model.onnx").read_bytes() == model_files["2"].read_bytes()
    repository = load_repository(tmp_path / "models", {"churn": model_config(registry.recipe)})  # the serving app loads it as is
    assert repository.versions() == {"churn": ["2"]}


def test_after_a_rollback_new_pods_serve_the_champion(registry, model_files, tmp_path):
    from framework.runtime.rollout.state import reject_version

    set_aliases(registry.recipe, registry.uri, champion="1", candidate="2")
    reject_version(registry.recipe.registered_model, "2", uri=registry.uri)
    assert fetch(registry, tmp_path / "models") == 0
    assert (tmp_path / "models" / "churn" / "1" / "model.onnx").read_bytes() == model_files["1"].read_bytes()
    assert not (tmp_path / "models" / "churn" / "2").exists()


def test_alias_by_hand_and_a_second_fetch_keeps_the_files(registry, tmp_path):
    set_aliases(registry.recipe, registry.uri, champion="1", candidate="2")
    assert fetch(registry, tmp_path / "models", "--alias", "champion") == 0
    model = tmp_path / "models" / "churn" / "1" / "model.onnx"
    before = model.stat().st_mtime_ns
    assert fetch(registry, tmp_path / "models", "--alias", "champion") == 0
    assert model.stat().st_mtime_ns == before
    assert not list((tmp_path / "models").rglob(".*partial"))


def test_an_alias_or_a_model_nobody_registered_is_one_line(registry, tmp_path, capsys):
    set_aliases(registry.recipe, registry.uri, champion="1", candidate="2")
    name = registry.recipe.registered_model
    assert fetch(registry, tmp_path / "models", "--alias", "shadow") == 1
    assert capsys.readouterr().err == (f"fetch_model: registry: no version of '{name}' has alias shadow in {registry.uri}: "
                                       "train and register one first (mlops apply churn)\n")
    nobody = unique_name("nobody")
    resolved = write_resolved(with_tracking(registry.recipe, registered_model=nobody), tmp_path)
    assert fetch(registry, tmp_path / "models", resolved=resolved) == 1
    assert capsys.readouterr().err == (f"fetch_model: registry: no version of '{nobody}' has alias candidate or champion in "
                                       f"{registry.uri}: train and register one first (mlops apply churn)\n")
    assert not (tmp_path / "models").exists()


def test_no_registered_version_is_one_line_and_exit_1(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "framework.runtime.serving.fetch_model", str(RESOLVED), str(tmp_path / "models"),
         "--state-dir", str(tmp_path / "empty")],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )
    assert result.returncode == 1
    store = f"sqlite:///{(tmp_path / 'empty').resolve()}/mlflow.db"
    assert result.stderr == (
        f"fetch_model: registry: no version of 'churn' has alias candidate or champion in {store}: "
        "train and register one first (mlops apply churn)\n"
    )
    assert not (tmp_path / "models").exists() and not (tmp_path / "empty").exists()


def test_a_server_nobody_answers_at_is_one_line(churn_recipe, tmp_path, monkeypatch, capsys):
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # MLflow's default retries for ~4 minutes first
    resolved = write_resolved(with_tracking(churn_recipe, uri=url), tmp_path)
    assert main([str(resolved), str(tmp_path / "models")]) == 1
    assert capsys.readouterr().err == f"fetch_model: registry: cannot reach the MLflow server at {url}: Connection refused\n"
    assert not (tmp_path / "models").exists()


# --- the init container against the team's server, behind a gateway ---------------------
TOKEN = "t0ken"
SECRETS = {("mlflow-credentials", "token"): TOKEN}  # the Secret deploy.secrets names (recipes/deploy/k8s.yaml)
BASIC = "Basic " + base64.b64encode(b"ci:pa55").decode()


@dataclass(frozen=True)
class Gateway:
    proxy: AuthProxy
    recipe: Any  # staging's, tracking through the gateway
    artifacts: str  # the registering run's artifact path on the server
    registered: list[tuple[str, str, str | None]]  # the requests that registered the versions


@pytest.fixture(scope="module")
def gateway(mlflow_server, model_files, tmp_path_factory):
    """Versions 1 (champion) and 2 (candidate) of staging's model, registered (artifacts
    uploaded) through a gateway to the shared server that wants the token, or a user and
    a password."""
    from framework.runtime import tracking

    with AuthProxy(mlflow_server, f"Bearer {TOKEN}", BASIC) as proxy:
        with pytest.MonkeyPatch.context() as mp:  # the token for the registration only
            mp.setenv("MLFLOW_TRACKING_TOKEN", TOKEN)
            overrides = server_overrides(proxy.url, unique_name("churn"))
            recipe = api.load_recipe("churn", env="staging", overrides=overrides, project=REPO).recipe
            state = tmp_path_factory.mktemp("gateway") / ".mlops"
            uri, versions = register(recipe, state, [model_files["1"], model_files["2"]])
            assert versions == ["1", "2"]
            set_aliases(recipe, uri, champion="1", candidate="2")
            source = tracking.client(uri).get_model_version(recipe.registered_model, "2").source
        artifacts = source.removeprefix("mlflow-artifacts:/").removesuffix("/model2")
        yield Gateway(proxy, recipe, artifacts, list(proxy.seen))


def run_init_container(recipe, root: Path) -> subprocess.CompletedProcess:
    """The Triton pod's init container as the cluster runs it, from the manifests generate
    renders: its command, its env (Secrets resolved from SECRETS), each volume a folder
    under root (the ConfigMap's files written in it), mount paths mapped onto those."""
    docs = [doc for artifact in kubernetes.render(recipe) for doc in yaml.safe_load_all(artifact.text) if doc]
    pod = next(doc for doc in docs if doc["kind"] == "Deployment")["spec"]["template"]["spec"]
    (init,) = pod["initContainers"]
    config_maps = {doc["metadata"]["name"]: doc["data"] for doc in docs if doc["kind"] == "ConfigMap"}
    for volume in pod["volumes"]:
        (root / volume["name"]).mkdir(parents=True)
        for key, text in config_maps.get(volume.get("configMap", {}).get("name"), {}).items():
            (root / volume["name"] / key).write_text(text, encoding="utf-8")
    mounts = {m["mountPath"]: root / m["name"] for m in init["volumeMounts"]}

    def local(value: str) -> str:
        for path, folder in mounts.items():
            if value == path or value.startswith(f"{path}/"):
                return f"{folder}{value[len(path):]}"
        return value

    def value_of(var: dict) -> str:
        ref = var.get("valueFrom", {}).get("secretKeyRef")
        return SECRETS[ref["name"], ref["key"]] if ref else local(var["value"])

    assert init["command"][:3] == ["python", "-m", "framework.runtime.serving.fetch_model"]
    env = {var["name"]: value_of(var) for var in init["env"]}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"  # nothing to phone home to from here
    # The image's python with the project installed: this one, run from the checkout.
    return subprocess.run([sys.executable, *map(local, init["command"][1:])], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_the_init_container_fills_the_repository_through_the_gateway(gateway, model_files, tmp_path):
    proxy, name = gateway.proxy, gateway.recipe.registered_model
    before = len(proxy.seen)
    done = run_init_container(gateway.recipe, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    models = tmp_path / "models"
    assert done.stdout == f"fetch_model: {name} version 2 (candidate) -> {models / 'churn'}\n"
    assert sorted(p.relative_to(models).as_posix() for p in models.rglob("*")) == [
        "churn", "churn/2", "churn/2/model.onnx", "churn/config.pbtxt"]
    assert (models / "churn" / "2" / "model.onnx").read_bytes() == model_files["2"].read_bytes()
    assert (models / "churn" / "config.pbtxt").read_text() == (GENERATED / "staging" / "triton" / "churn" / "config.pbtxt").read_text()
    repository = load_repository(models, {"churn": model_config(gateway.recipe)})
    assert repository.versions() == {"churn": ["2"]}
    # The token went with every call: the registration's, its uploads, the model's download.
    fetched = proxy.seen[before:]
    assert {auth for _, _, auth in gateway.registered + fetched} == {f"Bearer {TOKEN}"}
    artifacts = f"/api/2.0/mlflow-artifacts/artifacts/{gateway.artifacts}"
    assert sorted(path for method, path, _ in gateway.registered if method == "PUT") == [
        f"{artifacts}/model1/model.onnx", f"{artifacts}/model2/model.onnx", f"{artifacts}/recipe.resolved.yaml"]
    assert ("GET", f"{artifacts}/model2/model.onnx") in [(method, path) for method, path, _ in fetched]


@pytest.mark.slow
def test_a_user_and_password_work_and_refused_credentials_are_one_line(gateway, tmp_path, monkeypatch, capsys):
    resolved = write_resolved(gateway.recipe, tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "ci")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "pa55")
    before = len(gateway.proxy.seen)
    assert main([str(resolved), str(tmp_path / "models"), "--alias", "champion"]) == 0
    assert (tmp_path / "models" / "churn" / "1" / "model.onnx").is_file()
    assert {auth for _, _, auth in gateway.proxy.seen[before:]} == {BASIC}
    capsys.readouterr()

    refused = (f"fetch_model: registry: the MLflow server at {gateway.proxy.url} refused the credentials (UNAUTHENTICATED): "
               "set MLFLOW_TRACKING_TOKEN, or MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (deploy.secrets)\n")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "wrong")
    assert main([str(resolved), str(tmp_path / "other")]) == 1
    assert capsys.readouterr().err == refused
    for var in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.delenv(var)
    assert main([str(resolved), str(tmp_path / "other")]) == 1  # no credentials at all
    assert capsys.readouterr().err == refused
    assert not (tmp_path / "other").exists()
