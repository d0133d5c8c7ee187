"""Feast (data.source.feast) in the generated files: feast/feature_store.yaml, read by
Feast's own config model in every env of churn_features; the materialisation CronJob
and its ConfigMap (k8s/feast-materialize.yaml), whose command Feast's CLI parses; the
online store's Secrets in the pods that read features. The manifests also go through
every check of test_kubernetes (strict schemas at each minor, checkov, references) and
the goldens, as the churn-features-* variants of conftest."""

from __future__ import annotations

import json
import os
import re
import subprocess
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

import pytest
import yaml

from framework import api
from framework.contracts import feast
from framework.recipe.types import SecretRef
from framework.targets import common, feature_store, kubernetes, render_all
from tests.conftest import REPO
from tests.targets import k8s_checks as k8s

RECIPE = "churn_features"
STORES = {"dev": "sqlite", "staging": "redis", "prod": "postgres"}
SECRET_FIELDS = {"redis": "connection_string", "postgres": "password"}
DUMMY = {feast.REDIS_ENV: "redis.example:6379,password=dummy-value", feast.POSTGRES_PASSWORD_ENV: "dummy-value"}
CRONJOB_FILE = f"{kubernetes.DIR}/{kubernetes.FEAST_CRONJOB}"


@lru_cache(maxsize=None)
def _recipe(env: str, overrides: tuple[str, ...] = ()):
    return api.load_recipe(RECIPE, env=env, overrides=list(overrides), project=REPO).recipe


@lru_cache(maxsize=None)
def _files(env: str) -> dict[str, str]:
    return {a.path: a.text for a in render_all(_recipe(env)) if a.scope == "env"}


def _materialize_docs(recipe) -> list[dict]:
    return [doc for _, doc in k8s.documents(a for a in kubernetes.render(recipe) if a.path == CRONJOB_FILE)]


def _store_refs(recipe) -> set[tuple[str, str]]:
    return {(ref.name, ref.key) for ref in feast.secret_env(recipe).values()}


# --- feature_store.yaml --------------------------------------------------------------------
@pytest.mark.parametrize("env", sorted(STORES))
def test_feature_store_yaml_is_accepted_by_feast(env: str, monkeypatch, tmp_path: Path):
    """Loaded as Feast's CLI loads it (environment expanded, then RepoConfig), with the
    Secrets' variables set to dummies: the env's online store, its secret a reference."""
    from feast.repo_config import RepoConfig

    recipe = _recipe(env)
    text = _files(env)[feature_store.PATH]
    for var, value in DUMMY.items():
        monkeypatch.setenv(var, value)
    config = RepoConfig(repo_path=tmp_path, **yaml.safe_load(os.path.expandvars(text)))
    store = STORES[env]
    assert config.online_store.type == store
    assert config.project == feast.project_name(recipe) == "churn_features"  # no hyphen: sqlite table names
    assert yaml.safe_load(text) == feast.feature_store_config(recipe)
    assert text.startswith(common.header(recipe))
    refs = feast.secret_env(recipe)
    assert re.findall(r"\$\{(\w+)\}", text) == list(refs)  # the only variables are the store's Secrets
    assert not any(value in text for value in DUMMY.values())
    if store == "sqlite":
        assert refs == {}
        return
    (var,) = refs
    field = SECRET_FIELDS[store]
    assert yaml.safe_load(text)["online_store"][field] == f"${{{var}}}"
    assert getattr(config.online_store, field) == DUMMY[var]  # what Feast sees in the pod


@pytest.mark.parametrize("env", sorted(STORES))
def test_generate_writes_feature_store_yaml_for_every_env(env: str):
    folder = REPO / "generated" / "churn-features" / env
    assert (folder / feature_store.PATH).read_text(encoding="utf-8") == _files(env)[feature_store.PATH]
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    assert feature_store.PATH in {a["path"] for a in manifest["artifacts"]}


def test_recipes_without_feast_get_no_feature_store():
    paths = {a.path for a in render_all(api.load_recipe("churn", env="prod", project=REPO).recipe)}
    assert feature_store.PATH not in paths and CRONJOB_FILE not in paths


# --- the materialisation CronJob -----------------------------------------------------------
@pytest.mark.parametrize("env", ["staging", "prod"])
def test_materialize_cronjob(env: str):
    recipe = _recipe(env)
    configmap, cronjob = _materialize_docs(recipe)
    assert [p for doc in (configmap, cronjob) for p in k8s.validate_core(doc) + k8s.check_names(doc)] == []
    names = common.names(recipe)
    assert configmap["metadata"]["name"] == names.feast_configmap
    assert configmap["data"] == {feast.FILE_NAME: _files(env)[feature_store.PATH]}  # the very bytes

    spec = cronjob["spec"]
    assert cronjob["metadata"]["name"] == names.feast_cronjob
    assert spec["schedule"] == recipe.data.source.feast.materialize_schedule
    assert spec["concurrencyPolicy"] == "Forbid" and spec["timeZone"] == "Etc/UTC"
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    assert k8s.check_pod(pod) == []
    assert pod["serviceAccountName"] == recipe.deploy.service_account and pod["restartPolicy"] == "Never"
    (container,) = pod["containers"]
    assert container["image"] == feast.IMAGE and container["imagePullPolicy"] == "Always"
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == feast.MOUNT_DIR]
    assert mount["readOnly"] is True
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert volume["configMap"]["name"] == names.feast_configmap
    assert "/tmp" in k8s.writable_paths(container, pod)  # HOME on a read-only root

    # The store's Secret under the name feature_store.yaml references, and deploy.secrets.
    assert k8s.referenced_secrets(pod) == _store_refs(recipe) | {(r.name, r.key) for r in recipe.deploy.secrets.values()}
    secret_vars = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e}
    for var, ref in feast.secret_env(recipe).items():
        assert secret_vars[var] == {"name": ref.name, "key": ref.key}
    assert "CKV_K8S_35" in k8s.checkov_skip_annotations(cronjob)


def test_no_cronjob_for_an_sqlite_store():
    """An sqlite store is a file on one machine: dev materialises on the workstation."""
    assert _materialize_docs(_recipe("dev")) == []
    assert CRONJOB_FILE not in _files("dev") and feature_store.PATH in _files("dev")


def test_materialize_command_is_what_feasts_cli_takes(tmp_path: Path, monkeypatch):
    """The container's command through a real shell (a stand-in `feast` records its
    arguments), then those arguments through Feast's own CLI with the store stubbed: the
    options exist, the repository and file are the mounted ones, the view is the
    recipe's and the end timestamp parses as UTC, the time the job ran."""
    from click.testing import CliRunner
    from feast.cli import cli as feast_cli

    recipe = _recipe("staging")
    _, cronjob = _materialize_docs(recipe)
    (container,) = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    bin_dir, recorded = tmp_path / "bin", tmp_path / "args"
    bin_dir.mkdir()
    (bin_dir / "feast").write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {recorded}\n')
    (bin_dir / "feast").chmod(0o755)
    before = datetime.now(timezone.utc).replace(microsecond=0)  # `date` prints whole seconds
    subprocess.run(container["command"], env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}, check=True)
    after = datetime.now(timezone.utc)
    args = recorded.read_text().splitlines()

    calls = []

    class Store:
        def materialize_incremental(self, **kwargs):
            calls.append(kwargs)

    def create_feature_store(ctx):
        calls.append(dict(ctx.obj))
        return Store()

    monkeypatch.setattr(feast_cli, "create_feature_store", create_feature_store)
    result = CliRunner().invoke(feast_cli.cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    obj, call = calls
    assert obj["CHDIR"] == Path(feast.MOUNT_DIR)
    assert obj["FS_YAML_FILE"] == Path(feast.MOUNT_DIR) / feast.FILE_NAME
    assert list(call["feature_views"]) == [recipe.data.source.feast.feature_view]
    assert before <= call["end_date"] <= after  # the time the command ran


# --- the pods that read features -----------------------------------------------------------
@pytest.mark.parametrize("env", sorted(STORES))
def test_ray_pods_carry_the_online_store_secret(env: str):
    """Training (the RayJob) and serving (the RayService: online lookups) read the store;
    KubeRay's submitter pod only submits and gets no Secret."""
    recipe = _recipe(env)
    expected = {var: {"secretKeyRef": {"name": ref.name, "key": ref.key}} for var, ref in feast.secret_env(recipe).items()}
    for path in ("ray/rayjob.yaml", "ray/rayservice.yaml"):
        doc = yaml.safe_load(_files(env)[path])
        ray_containers = 0
        for _, pod in k8s.pod_specs(doc):
            for container in pod["containers"]:
                found = {e["name"]: e.get("valueFrom") for e in container.get("env", []) if e["name"].startswith("FEAST_")}
                if container["name"] == "ray-job-submitter":
                    assert found == {}
                    continue
                ray_containers += 1
                assert found == expected, f"{path}: {container['name']}"
        assert ray_containers == 2, path  # head and workers


def test_pytorchjob_carries_the_online_store_secret():
    recipe = _recipe("staging", ("training=pytorchjob_gpu",))
    (job,) = k8s.of_kind(k8s.documents(kubernetes.render(recipe)), "PyTorchJob")
    for _, pod in k8s.pod_specs(job):
        assert _store_refs(recipe) <= k8s.referenced_secrets(pod)


def test_the_store_secret_wins_over_a_deploy_secret_of_its_name():
    recipe = _recipe("staging")
    shadow = {**recipe.deploy.secrets, feast.REDIS_ENV: SecretRef(name="other", key="other")}
    recipe = recipe.model_copy(update={"deploy": recipe.deploy.model_copy(update={"secrets": shadow})})
    _, cronjob = _materialize_docs(recipe)
    (container,) = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    redis = [e for e in container["env"] if e["name"] == feast.REDIS_ENV]
    assert redis == [{"name": feast.REDIS_ENV,
                      "valueFrom": {"secretKeyRef": {"name": "feast-redis", "key": "connection_string"}}}]


def test_an_online_wandb_key_reaches_every_tracked_pod_by_reference() -> None:
    from framework.targets import common

    recipe = api.load_recipe("churn", overrides=[
        "+tracking.backends=[mlflow,wandb]", "+tracking.wandb={mode: online, api_key: {name: wandb, key: api-key}}",
        "+deploy.secrets.WANDB_API_KEY={name: other, key: k}"], project=REPO).recipe
    env = common.secret_env(recipe)
    keys = [e for e in env if e["name"] == "WANDB_API_KEY"]
    assert keys == [{"name": "WANDB_API_KEY", "valueFrom": {"secretKeyRef": {"name": "wandb", "key": "api-key"}}}]
