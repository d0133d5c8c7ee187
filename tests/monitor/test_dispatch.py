"""`on_drift: retrain` in GitHub Actions dispatches the recipe's workflow: against a
fake of GitHub's API that answers with GitHub's own status codes and error bodies, each
refusal reads as one line saying what to fix, and the request carries GitHub's headers."""

from __future__ import annotations

import json

import pytest

from framework import api
from framework.errors import MlopsError
from framework.runtime.monitor.actions import dispatch
from tests.conftest import REPO
from tests.monitor.fake_github import FakeGitHub, Repository, serve
from tests.ray_head import free_port


@pytest.fixture(scope="module")
def recipe():
    return api.load_recipe("churn", project=REPO).recipe


@pytest.fixture
def github(monkeypatch):
    fake = FakeGitHub(tokens={"t0ken": True, "reader": False},
                      repositories={"acme/ml": Repository({"mlops-churn.yml": True, "mlops-old.yml": False}, {"main"})})
    url, stop = serve(fake)
    for name, value in {"GITHUB_TOKEN": "t0ken", "GITHUB_REPOSITORY": "acme/ml", "GITHUB_REF_NAME": "main",
                        "GITHUB_API_URL": url}.items():
        monkeypatch.setenv(name, value)
    yield fake
    stop()


def test_an_accepted_dispatch_sends_githubs_headers(recipe, github):
    assert dispatch(recipe) == ["dispatched workflow mlops-churn.yml on main in acme/ml (HTTP 204)"]
    (request,) = github.requests
    assert request["method"] == "POST" and request["path"] == "/repos/acme/ml/actions/workflows/mlops-churn.yml/dispatches"
    headers = request["headers"]
    assert headers["authorization"] == "Bearer t0ken" and headers["accept"] == "application/vnd.github+json"
    assert headers["x-github-api-version"] == "2022-11-28" and headers["content-type"] == "application/json"
    assert json.loads(request["body"]) == {"ref": "main"}


@pytest.mark.parametrize(("variables", "line"), [
    ({"GITHUB_TOKEN": "expired"}, "GITHUB_TOKEN is not a valid token (HTTP 401: Bad credentials)"),
    ({"GITHUB_TOKEN": "reader"}, "GITHUB_TOKEN may not dispatch workflows: give the job `permissions: actions: write` "
                                 "(HTTP 403: Resource not accessible by integration)"),
    ({"GITHUB_REPOSITORY": "acme/other"}, "no workflow mlops-churn.yml in acme/other that this token can see: commit the "
                                          "generated workflow (`mlops generate`) and check GITHUB_REPOSITORY (HTTP 404: Not Found)"),
    ({"GITHUB_REF_NAME": "feature"}, "mlops-churn.yml on feature cannot be dispatched: it needs an `on: workflow_dispatch` "
                                     "trigger and the ref must exist (HTTP 422: No ref found for: feature)"),
])
def test_each_refusal_says_what_to_fix(recipe, github, monkeypatch, variables, line):
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(MlopsError) as raised:
        dispatch(recipe)
    assert str(raised.value) == f"monitoring.drift.on_drift: {line}"


def test_a_workflow_without_the_trigger_is_named(recipe, github, monkeypatch):
    named = recipe.model_copy(update={"name": "old"})
    with pytest.raises(MlopsError) as raised:
        dispatch(named)
    assert str(raised.value).endswith("(HTTP 422: Workflow does not have 'workflow_dispatch' trigger)")


def test_no_token_and_no_server(recipe, github, monkeypatch):
    monkeypatch.delenv("GITHUB_TOKEN")
    with pytest.raises(MlopsError) as raised:
        dispatch(recipe)
    assert str(raised.value) == ("monitoring.drift.on_drift: retrain in GitHub Actions needs GITHUB_TOKEN (with actions: "
                                 "write) and GITHUB_REPOSITORY in the environment")
    assert github.requests == []
    monkeypatch.setenv("GITHUB_TOKEN", "t0ken")
    monkeypatch.setenv("GITHUB_API_URL", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(MlopsError) as raised:
        dispatch(recipe)
    assert str(raised.value).startswith(f"monitoring.drift.on_drift: cannot reach http://127.0.0.1:")
