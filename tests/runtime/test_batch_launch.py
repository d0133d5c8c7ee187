"""The batch CronJob's launcher (`python -m framework.runtime.batch.launch`) against the
fake API server: it creates the batch RayJob from the manifest generate wrote (the
ConfigMap's copy), labelled with its run, waits until it finishes and exits 0, 3 (the
RayJob failed) or 1 (an error the Job retries); a retried pod waits for the RayJob its
earlier pod created instead of starting a second one."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from framework.runtime.batch import launch
from framework.targets.kubernetes import batch as batch_schedule
from tests.conftest import REPO
from tests.runtime.fake_kube_api import GONE, FakeKubeApi

PROD = REPO / "generated" / "churn" / "prod"
COLLECTION = "/apis/ray.io/v1/namespaces/ml-prod/rayjobs"
FIRST = f"{COLLECTION}/churn-batch-00001"
RUN = "0f5b3c1e-7a2d-4e8b-9c61-2d4f8a9b0c3e"


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    api = FakeKubeApi().start()
    monkeypatch.setenv("KUBECONFIG", str(api.write_kubeconfig(tmp_path / "kubeconfig")))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv(launch.RUN_ENV, raising=False)
    yield api
    api.stop()


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    """What the CronJob's pod mounts: the ConfigMap's rayjob.yaml (generated/churn/prod)."""
    docs = list(yaml.safe_load_all((PROD / "k8s" / "batch-cronjob.yaml").read_text()))
    (configmap,) = [d for d in docs if d["kind"] == "ConfigMap"]
    path = tmp_path / "rayjob.yaml"
    path.write_text(configmap["data"]["rayjob.yaml"])
    return path


def _main(manifest: Path, *args: str) -> int:
    return launch.main([str(manifest), "--poll-s", "0", *args])


def test_creates_the_rayjob_of_the_run_and_waits_until_it_succeeds(fake: FakeKubeApi, manifest: Path, capsys):
    fake.progress["rayjobs/churn-batch-00001"] = [
        {}, {"jobDeploymentStatus": "Initializing"}, {"jobDeploymentStatus": "Running", "jobStatus": "RUNNING"},
        {"jobDeploymentStatus": "Complete", "jobStatus": "SUCCEEDED"},
    ]
    assert _main(manifest, "--run", RUN) == 0
    assert fake.calls() == [("GET", COLLECTION), ("POST", COLLECTION)] + [("GET", FIRST)] * 4
    listed, created = fake.requests[0], fake.requests[1]
    assert listed.query == {"labelSelector": f"{launch.RUN_LABEL}={RUN}"}
    expected = yaml.safe_load(manifest.read_text())
    expected["metadata"]["labels"][launch.RUN_LABEL] = RUN
    assert created.body == expected  # the manifest as generated, plus the run's label
    assert created.body["metadata"]["generateName"] == "churn-batch-"
    out = capsys.readouterr().out
    assert "created RayJob/churn-batch-00001 in ml-prod" in out
    assert "RayJob/churn-batch-00001: jobDeploymentStatus Complete, jobStatus SUCCEEDED" in out


def test_a_failed_rayjob_fails_the_job_without_a_retry(fake: FakeKubeApi, manifest: Path, capsys):
    fake.progress["rayjobs/churn-batch-00001"] = [
        {"jobDeploymentStatus": "Failed", "jobStatus": "FAILED", "reason": "DeadlineExceeded"}]
    assert _main(manifest, "--run", RUN) == launch.FAILED_EXIT_CODE == batch_schedule.LAUNCH_FAILED_EXIT_CODE
    assert "jobDeploymentStatus Failed, jobStatus FAILED, reason DeadlineExceeded" in capsys.readouterr().out


def test_a_retried_pod_waits_for_the_rayjob_of_its_run(fake: FakeKubeApi, manifest: Path, capsys):
    assert _main(manifest, "--run", RUN) == 0
    assert _main(manifest, "--run", "another-run") == 0  # the next scheduled run: a new RayJob
    fake.requests.clear()
    assert _main(manifest, "--run", RUN) == 0  # this run's pod again (evicted, retried)
    assert ("POST", COLLECTION) not in fake.calls() and fake.calls()[-1] == ("GET", FIRST)
    assert "RayJob/churn-batch-00001 in ml-prod was created by this run's earlier pod: waiting for it" in (
        capsys.readouterr().out)
    assert sorted(p.rsplit("/", 1)[1] for p in fake.objects) == ["churn-batch-00001", "churn-batch-00002"]


def test_the_run_comes_from_the_environment(fake: FakeKubeApi, manifest: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(launch.RUN_ENV, RUN)
    assert _main(manifest) == 0
    assert fake.objects[FIRST]["metadata"]["labels"][launch.RUN_LABEL] == RUN


def test_forbidden_is_one_line_naming_the_verb(fake: FakeKubeApi, manifest: Path, capsys):
    fake.fail[("POST", "rayjobs")] = (403, 'rayjobs.ray.io is forbidden: User "system:serviceaccount:ml-prod:x" '
                                           'cannot create resource "rayjobs"')
    assert _main(manifest, "--run", RUN) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("kubernetes: create a RayJob churn-batch-... in ml-prod: forbidden (403): ")
    assert "`kubectl auth can-i create rayjobs.ray.io -n ml-prod`" in line


def test_a_rayjob_deleted_while_waited_for(fake: FakeKubeApi, manifest: Path, capsys):
    fake.progress["rayjobs/churn-batch-00001"] = [{"jobDeploymentStatus": "Running", "jobStatus": "RUNNING"}, GONE]
    assert _main(manifest) == 1
    assert "kubernetes: wait for RayJob/churn-batch-00001 in ml-prod: the RayJob was deleted before it finished" in (
        capsys.readouterr().err)


def test_an_invalid_manifest_is_refused_by_the_cluster(fake: FakeKubeApi, manifest: Path, capsys):
    manifest.write_text(manifest.read_text().replace("shutdownAfterJobFinishes: true", "shutdownAfterJobFinishes: yes please"))
    assert _main(manifest, "--run", RUN) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == (
        "kubernetes: create a RayJob churn-batch-... in ml-prod: the API server refused it (422 Invalid): "
        'RayJob.ray.io "churn-batch-00001" is invalid: spec.shutdownAfterJobFinishes: Invalid value: "string": '
        'spec.shutdownAfterJobFinishes in body must be of type boolean: "string"')
    assert fake.objects == {}


def test_not_a_rayjob_manifest(fake: FakeKubeApi, tmp_path: Path, capsys):
    path = tmp_path / "x.yaml"
    path.write_text("kind: ConfigMap\nmetadata: {name: x}\n")
    assert _main(path) == 1
    assert capsys.readouterr().err.strip() == f"{path}: not a RayJob manifest"
    assert fake.calls() == []
