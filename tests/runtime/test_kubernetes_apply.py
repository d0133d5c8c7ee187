"""`apply --target kubernetes` against a fake API server (tests/runtime/fake_kube_api.py):
no API server can run on the dev machine, so there is no real-cluster test.

The fake answers as kube-apiserver does for what apply uses (server-side apply with
field ownership, schema validation, generations, discovery, finalizers), so the error
paths below are the cluster's own answers wherever it can give them; it is scripted
per object for what only controllers and RBAC decide: readiness progressions,
injected errors (401, 403), missing namespaces. Most tests apply the committed
generated/ (and tests/golden/) dirs read-only; the CLI tests apply a copy.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from framework.errors import MlopsError
from framework.runtime.kubernetes.objects import ORDER, ordered, parse, read_env_dir
from framework.runtime.kubernetes.rest import RESOURCES
from framework.runtime.kubernetes.apply import KubeOutcome, Selection, Waits, apply_env_dir
from tests.conftest import REPO, run_cli, tree_snapshot
from framework.runtime.kubernetes.rest import CRD_PROVIDERS
from tests.runtime.fake_kube_api import CRD_SCHEMAS, TOKEN, Crd, FakeKubeApi, write_kubeconfig

FAST = Waits(job_s=5, serving_s=5, poll_s=0.01, delete_s=5)
CHURN_DEV = REPO / "generated" / "churn" / "dev"
GOLDEN = REPO / "tests" / "golden"
NS = "/namespaces/ml-dev"
RAYJOB = f"/apis/ray.io/v1{NS}/rayjobs/churn-train"
DEPLOYMENT = f"/apis/apps/v1{NS}/deployments/churn-server"
ROLLOUT = f"/apis/argoproj.io/v1alpha1{NS}/rollouts/churn-server"
VIRTUAL_SERVICE = f"/apis/networking.istio.io/v1{NS}/virtualservices/churn"
CHURN_DEV_ORDER = [
    f"/api/v1{NS}/serviceaccounts/mlops-runner",
    f"/api/v1{NS}/configmaps/churn-recipe",
    f"/apis/networking.k8s.io/v1{NS}/networkpolicies/churn-server",
    RAYJOB,
    f"/api/v1{NS}/services/churn",
    f"/apis/apps/v1{NS}/deployments/churn-server",
    f"/apis/argoproj.io/v1alpha1{NS}/analysistemplates/churn-analysis",
    f"/apis/networking.istio.io/v1{NS}/destinationrules/churn",
    f"/apis/networking.istio.io/v1{NS}/virtualservices/churn",
    f"/apis/argoproj.io/v1alpha1{NS}/rollouts/churn-server",
    f"/apis/autoscaling/v2{NS}/horizontalpodautoscalers/churn-server",
    f"/apis/policy/v1{NS}/poddisruptionbudgets/churn-server",
    f"/apis/monitoring.coreos.com/v1{NS}/servicemonitors/churn-server",
    f"/apis/monitoring.coreos.com/v1{NS}/prometheusrules/churn-server",
    f"/apis/batch/v1{NS}/cronjobs/churn-drift",
]
SERVING_WAITS = [("GET", f"/apis/apps/v1{NS}/deployments/churn-server"), ("GET", f"/apis/argoproj.io/v1alpha1{NS}/rollouts/churn-server")]
LOGS = "see its logs with `kubectl logs -n ml-dev job/churn-train` or `kubectl describe rayjob churn-train -n ml-dev`"


class Lines:
    """A console that keeps what apply says."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def print(self, line: str, **_: object) -> None:
        self.lines.append(line)


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    api = FakeKubeApi().start()
    monkeypatch.setenv("KUBECONFIG", str(api.write_kubeconfig(tmp_path / "kubeconfig")))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    yield api
    api.stop()


def _apply(env_dir: Path = CHURN_DEV, waits: Waits = FAST, console: Lines | None = None) -> KubeOutcome:
    return apply_env_dir(env_dir, waits, console)


def _error(env_dir: Path = CHURN_DEV, waits: Waits = FAST) -> str:
    with pytest.raises(MlopsError) as caught:
        _apply(env_dir, waits)
    return str(caught.value)


def _env_dirs() -> list[Path]:
    generated = [p for p in (REPO / "generated").glob("*/*") if p.is_dir()]
    return sorted(generated + [p for p in GOLDEN.iterdir() if p.is_dir() and not p.name.startswith("_")])


# --- the tables --------------------------------------------------------------------------
def test_the_tables_cover_every_generated_kind_at_its_api_version() -> None:
    seen = set()
    for env_dir in _env_dirs():
        for obj in parse(read_env_dir(env_dir)):
            seen.add((obj.api_version, obj.kind))
            assert obj.kind in ORDER, f"{env_dir}/{obj.source}: {obj.kind} has no place in the apply order"
            resource = RESOURCES.get((obj.group, obj.kind))
            assert resource is not None, f"{env_dir}/{obj.source}: no REST path for {obj.api_version} {obj.kind}"
            assert resource.version == obj.version, f"{obj.kind}: generated {obj.api_version}, table {resource.version}"
    assert {kind for _, kind in seen} >= {"RayJob", "PyTorchJob", "RayService", "Rollout", "VirtualService", "CronJob"}
    assert set(ORDER) <= {kind for _, kind in RESOURCES}


def test_only_the_manifests_are_read() -> None:
    files = read_env_dir(GOLDEN / "churn-ray-serve")
    assert sorted(files) == ["k8s/configmap.yaml", "k8s/drift-cronjob.yaml", "k8s/prometheusrule.yaml",
                             "k8s/serviceaccount.yaml", "ray/rayjob.yaml", "ray/rayservice.yaml"]


def test_the_rag_crs_are_read_and_their_serve_config_is_not() -> None:
    files = read_env_dir(GOLDEN / "support-ray-serve-llm")
    assert sorted(files) == ["k8s/configmap.yaml", "k8s/prometheusrule.yaml", "k8s/rag-vectors-pvc.yaml",
                             "k8s/serviceaccount.yaml", "ray/rag-index-rayjob.yaml", "ray/rag-rayservice.yaml",
                             "ray/rayservice.yaml"]


def test_order_ties_break_by_kind_then_name() -> None:
    docs = {"k8s/x.yaml": "\n---\n".join(
        f"apiVersion: {v}\nkind: {k}\nmetadata: {{name: {n}, namespace: ns}}"
        for v, k, n in [("v1", "Service", "b"), ("example.com/v1", "Zeta", "a"), ("v1", "Service", "a"),
                        ("example.com/v1", "Alpha", "z"), ("batch/v1", "CronJob", "c"), ("v1", "ConfigMap", "c")])}
    assert [(o.kind, o.name) for o in ordered(parse(docs))] == [
        ("ConfigMap", "c"), ("Service", "a"), ("Service", "b"), ("CronJob", "c"), ("Alpha", "z"), ("Zeta", "a")]


# --- the happy path ----------------------------------------------------------------------
def test_churn_dev_is_server_side_applied_in_dependency_order(fake: FakeKubeApi) -> None:
    outcome = _apply()
    assert [r.path for r in fake.patches()] == CHURN_DEV_ORDER
    documents = {}
    for rel, text in read_env_dir(CHURN_DEV).items():
        for doc in yaml.safe_load_all(text):
            documents[(doc["kind"], doc["metadata"]["name"])] = doc
    for request in fake.patches():
        assert request.content_type == "application/apply-patch+yaml"
        assert request.query == {"fieldManager": "mlops", "force": "true"}
        assert request.authorization == f"Bearer {TOKEN}"  # the kubeconfig's credentials
        assert request.body == documents[(request.body["kind"], request.body["metadata"]["name"])]
    assert len(fake.patches()) == len(documents) == 15
    assert outcome.jobs == ["RayJob/churn-train in ml-dev: jobDeploymentStatus Complete, jobStatus SUCCEEDED"]
    assert outcome.ready == ["Deployment/churn-server in ml-dev", "Rollout/churn-server in ml-dev"]


def test_the_job_is_waited_for_before_serving_is_applied(fake: FakeKubeApi) -> None:
    fake.progress["rayjobs/churn-train"] = [
        {}, {"jobDeploymentStatus": "Initializing"}, {"jobDeploymentStatus": "Running", "jobStatus": "RUNNING"},
        {"jobDeploymentStatus": "Running", "jobStatus": "RUNNING"}, {"jobDeploymentStatus": "Complete", "jobStatus": "SUCCEEDED"}]
    console = Lines()
    _apply(console=console)
    config = [("PATCH", p) for p in CHURN_DEV_ORDER[:3]]
    serving = [("PATCH", p) for p in CHURN_DEV_ORDER[4:]]
    assert fake.calls() == config + [("GET", RAYJOB), ("PATCH", RAYJOB)] + [("GET", RAYJOB)] * 5 + serving + SERVING_WAITS
    assert [line for line in console.lines if line.startswith("RayJob")] == [
        "RayJob/churn-train in ml-dev: no status yet (is the KubeRay operator running?)",
        "RayJob/churn-train in ml-dev: jobDeploymentStatus Initializing, jobStatus -",
        "RayJob/churn-train in ml-dev: jobDeploymentStatus Running, jobStatus RUNNING",
        "RayJob/churn-train in ml-dev: jobDeploymentStatus Complete, jobStatus SUCCEEDED",
    ]


def test_serving_waits_until_the_deployment_is_available(fake: FakeKubeApi) -> None:
    deployment = "deployments/support-assistant-server"
    fake.progress[deployment] = [
        {"observedGeneration": 0},
        {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 0},
        {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 0},
        {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1,
         "conditions": [{"type": "Available", "status": "True"}]},
    ]
    console = Lines()
    outcome = _apply(REPO / "generated" / "support-assistant" / "dev", console=console)
    assert [line.split(": ", 1)[1] for line in console.lines if line.startswith("Deployment/")] == [
        "generation 1 not observed by the deployment controller yet",
        "0 of 1 replicas updated",
        "0 of 1 updated replicas available",
        "1 of 1 replicas available",
    ]
    assert [m for m, p in fake.calls() if p.endswith(deployment)] == ["PATCH", "GET", "GET", "GET", "GET"]
    # An LLM recipe has no training job; its RAG index job and service come with it.
    assert outcome.ready == ["Deployment/support-assistant-server in ml-dev", "RayService/support-assistant-rag in ml-dev"]
    assert outcome.jobs == ["RayJob/support-assistant-index in ml-dev: jobDeploymentStatus Complete, jobStatus SUCCEEDED"]


def test_a_pytorchjob_is_waited_for_by_its_conditions(fake: FakeKubeApi) -> None:
    fake.progress["pytorchjobs/churn-train"] = [
        {"conditions": [{"type": "Created", "status": "True"}]},
        {"conditions": [{"type": "Created", "status": "True"}, {"type": "Running", "status": "True"}]},
        {"conditions": [{"type": "Created", "status": "True"}, {"type": "Running", "status": "False"},
                        {"type": "Succeeded", "status": "True", "message": "PyTorchJob churn-train is successfully completed."}]},
    ]
    outcome = _apply(GOLDEN / "churn-pytorchjob")
    paths = [r.path for r in fake.patches()]
    # after the config: the recipe's ServiceAccount, ConfigMap and NetworkPolicy, and the
    # batch schedule's ServiceAccount, Role, RoleBinding and ConfigMap (prod scores nightly)
    assert paths.index("/apis/kubeflow.org/v1/namespaces/ml-prod/pytorchjobs/churn-train") == 7
    assert "/apis/rbac.authorization.k8s.io/v1/namespaces/ml-prod/roles/churn-batch-launcher" in paths[:7]
    assert outcome.jobs == ["PyTorchJob/churn-train in ml-prod: Succeeded: PyTorchJob churn-train is successfully completed."]


def test_a_rayservice_is_waited_for_until_running(fake: FakeKubeApi) -> None:
    fake.progress["rayservices/churn-serve"] = [
        {}, {"conditions": [{"type": "Ready", "status": "False", "reason": "WaitForServeDeploymentReady"}]},
        {"serviceStatus": "Running"}]
    console = Lines()
    outcome = _apply(GOLDEN / "churn-ray-serve", console=console)
    assert [r.key for r in fake.patches()] == ["serviceaccounts/mlops-runner", "configmaps/churn-recipe",
                                              "rayjobs/churn-train", "rayservices/churn-serve",
                                              "prometheusrules/churn-server", "cronjobs/churn-drift"]
    assert [line for line in console.lines if line.startswith("RayService")] == [
        "RayService/churn-serve in ml-dev: no status yet (is the KubeRay operator running?)",
        "RayService/churn-serve in ml-dev: serviceStatus -, not Ready: WaitForServeDeploymentReady",
        "RayService/churn-serve in ml-dev: serviceStatus Running",
    ]
    assert outcome.ready == ["RayService/churn-serve in ml-dev"]


def test_rag_indexes_into_its_volume_before_the_rag_service_is_applied(fake: FakeKubeApi) -> None:
    """The vector store's PVC with the config, the index RayJob waited for like a training
    job, then serving: the RAG RayService (which opens the store) among the objects waited
    until ready."""
    index, rag_service = f"/apis/ray.io/v1{NS}/rayjobs/support-assistant-index", "rayservices/support-assistant-rag"
    fake.progress["rayjobs/support-assistant-index"] = [{"jobDeploymentStatus": "Running", "jobStatus": "RUNNING"},
                                                        {"jobDeploymentStatus": "Complete", "jobStatus": "SUCCEEDED"}]
    outcome = _apply(GOLDEN / "support-dev")
    keys = [r.key for r in fake.patches()]
    assert keys[:5] == ["serviceaccounts/mlops-runner", "configmaps/support-assistant-recipe",
                        "networkpolicies/support-assistant-server", "persistentvolumeclaims/support-assistant-rag-vectors",
                        "rayjobs/support-assistant-index"]
    assert keys.index(rag_service) > keys.index("rayjobs/support-assistant-index")
    calls = fake.calls()
    last_job_get = max(i for i, call in enumerate(calls) if call == ("GET", index))
    first_serving = calls.index(("PATCH", f"/api/v1{NS}/services/support-assistant"))
    assert last_job_get < first_serving  # serving waited for the index to finish
    assert outcome.jobs == ["RayJob/support-assistant-index in ml-dev: jobDeploymentStatus Complete, jobStatus SUCCEEDED"]
    assert outcome.ready == ["Deployment/support-assistant-server in ml-dev", "RayService/support-assistant-rag in ml-dev"]


def test_a_job_finished_in_an_earlier_apply_is_deleted_and_run_again(fake: FakeKubeApi) -> None:
    fake.objects[RAYJOB] = {"apiVersion": "ray.io/v1", "kind": "RayJob", "metadata": {"name": "churn-train", "generation": 1}}
    console = Lines()
    _apply(console=console)
    assert fake.calls()[3:8] == [("GET", RAYJOB), ("DELETE", RAYJOB), ("GET", RAYJOB), ("PATCH", RAYJOB), ("GET", RAYJOB)]
    assert fake.requests[4].query == {"propagationPolicy": "Foreground"}
    assert ("deleting RayJob/churn-train in ml-dev, finished in an earlier apply "
            "(jobDeploymentStatus Complete, jobStatus SUCCEEDED), to run it again") in console.lines


def test_a_job_still_running_from_an_earlier_apply_is_waited_for_not_deleted(fake: FakeKubeApi) -> None:
    fake.objects[RAYJOB] = {"apiVersion": "ray.io/v1", "kind": "RayJob", "metadata": {"name": "churn-train", "generation": 1}}
    fake.progress["rayjobs/churn-train"] = [{"jobDeploymentStatus": "Running", "jobStatus": "RUNNING"},
                                            {"jobDeploymentStatus": "Complete", "jobStatus": "SUCCEEDED"}]
    _apply()
    assert "DELETE" not in [m for m, _ in fake.calls()]


def test_a_kind_not_in_the_tables_goes_last_through_discovery(fake: FakeKubeApi, tmp_path: Path) -> None:
    env_dir = tmp_path / "env"
    (env_dir / "k8s").mkdir(parents=True)
    (env_dir / "k8s" / "extra.yaml").write_text(
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w1, namespace: ns}\nspec: {size: 3}\n---\n"
        "apiVersion: v1\nkind: Service\nmetadata: {name: s1, namespace: ns}\n", encoding="utf-8")
    fake.install(Crd("example.com", "Widget", {"v1": None}))
    console = Lines()
    _apply(env_dir, console=console)
    assert [r.path for r in fake.patches()] == ["/api/v1/namespaces/ns/services/s1", "/apis/example.com/v1/namespaces/ns/widgets/w1"]
    assert console.lines[0] == "warning: kind Widget (Widget/w1 in ns) is not in the order table: applied last, not waited for"

    (env_dir / "k8s" / "extra.yaml").write_text("apiVersion: example.com/v1\nkind: Gadget\nmetadata: {name: g1, namespace: ns}\n")
    assert _error(env_dir) == "kubernetes: apply Gadget/g1 in ns: the cluster serves no kind Gadget in example.com/v1 (is its CRD installed?)"


# --- what the cluster keeps between applies -----------------------------------------------
def _idle_controllers(fake: FakeKubeApi, *paths: str) -> None:
    """From now on the controllers of these objects report what they last reported."""
    for path in paths:
        fake.progress["/".join(path.split("/")[-2:])] = [copy.deepcopy(fake.objects[path]["status"])]


def test_reapplying_unchanged_manifests_bumps_no_generation_and_waits_for_nothing(fake: FakeKubeApi) -> None:
    """A no-op apply changes no generation, so the controllers' observedGeneration still
    matches and apply does not wait for a rollout that never starts."""
    _apply()
    _idle_controllers(fake, DEPLOYMENT, ROLLOUT)
    before = {path: copy.deepcopy(obj["metadata"]) for path, obj in fake.objects.items() if path != RAYJOB}
    fake.requests.clear()
    outcome = _apply()
    assert {path: obj["metadata"] for path, obj in fake.objects.items() if path != RAYJOB} == before  # resourceVersions too
    assert [m for m, p in fake.calls() if p in (DEPLOYMENT, ROLLOUT)] == ["PATCH", "PATCH", "GET", "GET"]  # one look each
    assert outcome.ready == ["Deployment/churn-server in ml-dev", "Rollout/churn-server in ml-dev"]
    # the training job ran again: deleted once finished, created anew
    assert ("DELETE", RAYJOB) in fake.calls() and fake.objects[RAYJOB]["metadata"]["generation"] == 1


def test_a_changed_spec_is_waited_for_until_its_controller_observes_it(fake: FakeKubeApi) -> None:
    _apply()
    _idle_controllers(fake, DEPLOYMENT)  # a deployment controller that never gets to it
    deploy = Selection(skip_training=True, image="ghcr.io/example/mlops-runtime:0.1.0", image_tag="3f2c1a9b")
    with pytest.raises(MlopsError) as caught:  # the next build's tag: the Deployment's init container changes
        apply_env_dir(CHURN_DEV, Waits(serving_s=0.2, poll_s=0.01), None, deploy)
    assert str(caught.value) == ("kubernetes: wait for serving: Deployment/churn-server in ml-dev not ready after 0.2s "
                                 "(last status: generation 2 not observed by the deployment controller yet)")
    assert fake.objects[DEPLOYMENT]["metadata"]["generation"] == 2
    assert fake.objects[ROLLOUT]["metadata"]["generation"] == 1  # its spec (a workloadRef) did not change


def test_fields_another_manager_changed_are_taken_back(fake: FakeKubeApi) -> None:
    """apply forces its fields (the generated manifests are the truth, as a GitOps
    controller's drift correction): `kubectl apply --server-side` without
    --force-conflicts would refuse this apply, and every one after Argo Rollouts first
    moved the canary weights (test_fake_kube_api pins kube's 409 for it)."""
    _apply()
    fake.edit(DEPLOYMENT, {"spec": {"replicas": 3}}, manager="kubectl-edit")  # scaled by hand
    http = copy.deepcopy(fake.objects[VIRTUAL_SERVICE]["spec"]["http"])
    http[1]["route"][0]["weight"], http[1]["route"][1]["weight"] = 100, 0  # a finished canary
    fake.edit(VIRTUAL_SERVICE, {"spec": {"http": http}}, manager="rollouts-controller")
    assert fake.managers(DEPLOYMENT)["kubectl-edit (Update)"] == {".spec.replicas"}
    fake.requests.clear()
    _apply()
    assert all(r.query["force"] == "true" for r in fake.patches())
    assert fake.objects[DEPLOYMENT]["spec"]["replicas"] == 0
    assert [r["weight"] for r in fake.objects[VIRTUAL_SERVICE]["spec"]["http"][1]["route"]] == [90, 10]
    assert set(fake.managers(DEPLOYMENT)) == set(fake.managers(VIRTUAL_SERVICE)) == {"mlops (Apply)"}
    assert ".spec.replicas" in fake.managers(DEPLOYMENT)["mlops (Apply)"]


def test_a_finished_job_is_deleted_and_its_finalizers_waited_for(fake: FakeKubeApi) -> None:
    fake.finalizers["rayjobs/churn-train"] = ["ray.io/rayjob-finalizer"]  # KubeRay's, on every RayJob
    _apply()
    fake.requests.clear()
    _apply()
    assert fake.calls()[3:10] == [("GET", RAYJOB), ("DELETE", RAYJOB)] + [("GET", RAYJOB)] * 4 + [("PATCH", RAYJOB)]
    assert fake.requests[4].query == {"propagationPolicy": "Foreground"}


def test_a_job_whose_finalizer_is_never_removed(fake: FakeKubeApi) -> None:
    fake.finalizers["rayjobs/churn-train"] = ["ray.io/rayjob-finalizer"]
    _apply()
    fake.finalize_gets = None  # the KubeRay operator is gone: nobody removes its finalizer
    assert _error(waits=Waits(job_s=5, serving_s=5, poll_s=0.01, delete_s=0.2)) == (
        "kubernetes: delete RayJob/churn-train in ml-dev: still there 0.2s after deleting it (finalizers?); "
        "see `kubectl describe rayjob churn-train -n ml-dev`")
    _nothing_after(fake, "GET", RAYJOB)
    assert fake.objects[RAYJOB]["metadata"]["finalizers"] == ["ray.io/rayjob-finalizer", "foregroundDeletion"]


# --- failures: the exact message, and nothing applied after -------------------------------
def _nothing_after(fake: FakeKubeApi, method: str, path: str) -> None:
    assert (fake.requests[-1].method, fake.requests[-1].path) == (method, path)


def test_forbidden_names_the_object_the_verb_and_rbac(fake: FakeKubeApi) -> None:
    fake.fail[("PATCH", "deployments/churn-server")] = (
        403, 'deployments.apps "churn-server" is forbidden: User "tester" cannot patch resource "deployments" '
             'in API group "apps" in the namespace "ml-dev"')
    assert _error() == (
        'kubernetes: apply Deployment/churn-server in ml-dev: forbidden (403): deployments.apps "churn-server" is '
        'forbidden: User "tester" cannot patch resource "deployments" in API group "apps" in the namespace "ml-dev"; '
        "the kubeconfig's user needs RBAC permission to patch deployments.apps in namespace ml-dev "
        "(check with `kubectl auth can-i patch deployments.apps -n ml-dev`)")
    _nothing_after(fake, "PATCH", CHURN_DEV_ORDER[5])


def test_unauthorized_says_to_refresh_the_credentials(fake: FakeKubeApi) -> None:
    fake.fail[("PATCH", "serviceaccounts/mlops-runner")] = (401, "Unauthorized")
    assert _error() == (
        "kubernetes: apply ServiceAccount/mlops-runner in ml-dev: unauthorized (401): the API server refused the "
        "kubeconfig's credentials; log in again or refresh the token, then check RBAC with "
        "`kubectl auth can-i patch serviceaccounts -n ml-dev`")
    assert len(fake.requests) == 1


@pytest.mark.parametrize("group, ref, crd, provider", [
    ("ray.io", "RayJob/churn-train", "rayjobs.ray.io (ray.io/v1 RayJob)", "KubeRay (the kuberay-operator Helm chart)"),
    ("argoproj.io", "AnalysisTemplate/churn-analysis", "analysistemplates.argoproj.io (argoproj.io/v1alpha1 AnalysisTemplate)",
     "Argo Rollouts"),
    ("networking.istio.io", "DestinationRule/churn", "destinationrules.networking.istio.io (networking.istio.io/v1 DestinationRule)",
     "Istio"),
])
def test_a_missing_crd_names_what_to_install(fake: FakeKubeApi, group: str, ref: str, crd: str, provider: str) -> None:
    fake.uninstall(group)
    assert _error() == f"kubernetes: apply {ref} in ml-dev: the CRD {crd} is not installed in the cluster; install {provider}"
    assert fake.patches()[-1].path.startswith(f"/apis/{group}/")
    assert fake.calls()[-1] == ("GET", f"/apis/{group}")  # discovery: no such group, so not a version mismatch


def test_a_crd_version_the_cluster_does_not_serve(fake: FakeKubeApi) -> None:
    """KubeRay before 1.0 served ray.io at v1alpha1 only: its CRD is there, the manifests'
    version is not, and the cluster answers that 404 as it answers a CRD not installed."""
    fake.install(Crd("ray.io", "RayJob", {"v1alpha1": None}))
    assert _error() == (
        "kubernetes: apply RayJob/churn-train in ml-dev: the cluster serves rayjobs.ray.io at v1alpha1, not v1: the CRD "
        "installed is of another release than the manifests are written for; install a release of KubeRay (the "
        "kuberay-operator Helm chart) that serves ray.io/v1 RayJob")
    _nothing_after(fake, "GET", "/apis/ray.io/v1alpha1")


def test_a_builtin_version_the_cluster_does_not_serve(fake: FakeKubeApi, tmp_path: Path) -> None:
    env_dir = tmp_path / "env"
    (env_dir / "k8s").mkdir(parents=True)
    (env_dir / "k8s" / "hpa.yaml").write_text(  # removed in Kubernetes 1.26
        "apiVersion: autoscaling/v2beta2\nkind: HorizontalPodAutoscaler\nmetadata: {name: web, namespace: ns}\n"
        "spec: {maxReplicas: 2, scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}}\n", encoding="utf-8")
    assert _error(env_dir) == (
        "kubernetes: apply HorizontalPodAutoscaler/web in ns: the cluster serves horizontalpodautoscalers.autoscaling at "
        "v2, v1, not v2beta2: this Kubernetes release does not serve autoscaling/v2beta2 HorizontalPodAutoscaler")


def test_a_missing_namespace_says_to_create_it(fake: FakeKubeApi) -> None:
    fake.missing_namespaces.add("ml-dev")
    assert _error() == (
        "kubernetes: apply ServiceAccount/mlops-runner in ml-dev: namespace ml-dev does not exist; create it "
        "(`kubectl create namespace ml-dev`) or set deploy.namespace to an existing one")
    assert len(fake.requests) == 1


def _hand_edited(tmp_path: Path, rel: str, old: str, new: str) -> Path:
    """A copy of generated/churn/dev with one line of one manifest edited by hand."""
    env_dir = tmp_path / "dev"
    shutil.copytree(CHURN_DEV, env_dir)
    text = (env_dir / rel).read_text(encoding="utf-8")
    assert old in text
    (env_dir / rel).write_text(text.replace(old, new, 1), encoding="utf-8")
    return env_dir


def test_an_invalid_object_gives_the_field_and_the_rule_it_breaks(fake: FakeKubeApi, tmp_path: Path) -> None:
    env_dir = _hand_edited(tmp_path, "k8s/prometheusrule.yaml", "for: 5m", "for: 5 minutes")
    pattern = "^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
    assert _error(env_dir) == (
        "kubernetes: apply PrometheusRule/churn-server in ml-dev: the API server refused it (422 Invalid): "
        'PrometheusRule.monitoring.coreos.com "churn-server" is invalid: spec.groups[0].rules[0].for: Invalid value: '
        f'"5 minutes": spec.groups[0].rules[0].for in body should match \'{pattern}\'')
    _nothing_after(fake, "PATCH", CHURN_DEV_ORDER[-2])
    assert CHURN_DEV_ORDER[-2] not in fake.objects


def test_a_field_the_clusters_older_crd_does_not_declare(fake: FakeKubeApi) -> None:
    """The cluster runs a KubeRay older than the manifests: its RayJob CRD has no
    submitterPodTemplate. kube answers that apply with a 500 (kubernetes#122480)."""
    schema = json.loads((CRD_SCHEMAS / "ray.io" / "rayjob_v1.json").read_text(encoding="utf-8"))
    del schema["properties"]["spec"]["properties"]["submitterPodTemplate"]
    fake.install(Crd("ray.io", "RayJob", {"v1": schema}))
    assert _error() == (
        "kubernetes: apply RayJob/churn-train in ml-dev: the API server answered 500 Internal Server Error: failed to "
        "create typed patch object (ml-dev/churn-train; ray.io/v1, Kind=RayJob): .spec.submitterPodTemplate: field not "
        "declared in schema; the cluster's CRD rayjobs.ray.io is older than these manifests: upgrade "
        f"{CRD_PROVIDERS['ray.io']}")
    _nothing_after(fake, "PATCH", RAYJOB)


def test_a_failed_job_stops_before_serving_and_says_where_its_logs_are(fake: FakeKubeApi) -> None:
    fake.progress["rayjobs/churn-train"] = [
        {"jobDeploymentStatus": "Running", "jobStatus": "RUNNING"},
        {"jobDeploymentStatus": "Failed", "jobStatus": "FAILED", "reason": "AppFailed",
         "message": "Job entrypoint command failed with exit code 1"}]
    assert _error() == (
        "kubernetes: wait for RayJob/churn-train in ml-dev: the job failed (jobDeploymentStatus Failed, jobStatus FAILED, "
        f"reason AppFailed: Job entrypoint command failed with exit code 1); nothing after it was applied; {LOGS}")
    assert [r.path for r in fake.patches()] == CHURN_DEV_ORDER[:4]
    _nothing_after(fake, "GET", RAYJOB)


def test_a_failed_pytorchjob_points_at_the_master_pod(fake: FakeKubeApi) -> None:
    fake.progress["pytorchjobs/churn-train"] = [{"conditions": [
        {"type": "Created", "status": "True"},
        {"type": "Failed", "status": "True", "message": "PyTorchJob churn-train is failed because 1 Master replica(s) failed."}]}]
    assert _error(GOLDEN / "churn-pytorchjob") == (
        "kubernetes: wait for PyTorchJob/churn-train in ml-prod: the job failed (Failed: PyTorchJob churn-train is failed "
        "because 1 Master replica(s) failed.); nothing after it was applied; see its logs with "
        "`kubectl logs -n ml-prod churn-train-master-0` or `kubectl describe pytorchjob churn-train -n ml-prod`")
    assert [r.key for r in fake.patches()][-1] == "pytorchjobs/churn-train"


def test_a_job_that_does_not_finish_in_time(fake: FakeKubeApi) -> None:
    fake.progress["rayjobs/churn-train"] = [{"jobDeploymentStatus": "Running", "jobStatus": "RUNNING"}]
    assert _error(waits=Waits(job_s=0.2, poll_s=0.01)) == (
        "kubernetes: wait for RayJob/churn-train in ml-dev: not finished after 0.2s (last status: jobDeploymentStatus "
        f"Running, jobStatus RUNNING); nothing after it was applied; it may still be running in the cluster; {LOGS}")
    assert [r.path for r in fake.patches()] == CHURN_DEV_ORDER[:4]


def test_a_readiness_timeout_names_what_is_not_ready_and_its_last_status(fake: FakeKubeApi) -> None:
    fake.progress["rollouts/churn-server"] = [{"observedGeneration": "1", "phase": "Progressing",
                                              "message": "more replicas need to be updated"}]
    fake.progress["deployments/churn-server"] = [{"observedGeneration": 0}]
    assert _error(waits=Waits(serving_s=0.2, poll_s=0.01)).splitlines() == [
        "kubernetes: wait for serving: Deployment/churn-server in ml-dev not ready after 0.2s "
        "(last status: generation 1 not observed by the deployment controller yet)",
        "kubernetes: wait for serving: Rollout/churn-server in ml-dev not ready after 0.2s "
        "(last status: phase Progressing: more replicas need to be updated)",
    ]
    assert [r.path for r in fake.patches()] == CHURN_DEV_ORDER


def test_a_deployment_past_its_progress_deadline_fails_at_once(fake: FakeKubeApi) -> None:
    fake.progress["deployments/churn-server"] = [{"observedGeneration": 1, "conditions": [
        {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
         "message": 'ReplicaSet "churn-server-5d8f" has timed out progressing.'}]}]
    assert _error() == ('kubernetes: wait for serving: Deployment/churn-server in ml-dev failed: progress deadline '
                        'exceeded: ReplicaSet "churn-server-5d8f" has timed out progressing.')


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_connection_refused_names_the_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "kubeconfig", url)))
    assert _error() == (
        f"kubernetes: apply ServiceAccount/mlops-runner in ml-dev: cannot reach the Kubernetes API server at {url} "
        "(connection refused); is the cluster up, and is the kubeconfig's current context the right one "
        "(`kubectl config current-context`)?")


def test_no_kubeconfig_and_no_cluster_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "no-kubeconfig"
    monkeypatch.setenv("KUBECONFIG", str(missing))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert _error() == (
        f"kubernetes: no cluster to apply to: no kubeconfig at {missing} and not running inside a cluster; "
        "point KUBECONFIG at a kubeconfig (or write ~/.kube/config, e.g. with your cloud's get-credentials command) "
        "and check `kubectl config current-context`, or use --dry-run to list what would be applied")


def test_an_unusable_kubeconfig_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = tmp_path / "kubeconfig"
    broken.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n", encoding="utf-8")
    monkeypatch.setenv("KUBECONFIG", str(broken))
    assert _error().startswith(f"kubernetes: the kubeconfig {broken} is unusable: ")


# --- through the API and the CLI ---------------------------------------------------------
DRY_RUN = """churn (dev) would run:
  1. apply ServiceAccount/mlops-runner in ml-dev
  2. apply ConfigMap/churn-recipe in ml-dev
  3. apply NetworkPolicy/churn-server in ml-dev
  4. apply RayJob/churn-train in ml-dev
  5. wait until RayJob/churn-train in ml-dev succeeds (up to 3900s)
  6. apply Service/churn in ml-dev
  7. apply Deployment/churn-server in ml-dev
  8. apply AnalysisTemplate/churn-analysis in ml-dev
  9. apply DestinationRule/churn in ml-dev
  10. apply VirtualService/churn in ml-dev
  11. apply Rollout/churn-server in ml-dev
  12. apply HorizontalPodAutoscaler/churn-server in ml-dev
  13. apply PodDisruptionBudget/churn-server in ml-dev
  14. apply ServiceMonitor/churn-server in ml-dev
  15. apply PrometheusRule/churn-server in ml-dev
  16. apply CronJob/churn-drift in ml-dev
  17. wait until ready (up to 600s): Deployment/churn-server in ml-dev, Rollout/churn-server in ml-dev
"""


def test_dry_run_lists_the_objects_in_order_and_writes_nothing(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(project / "no-kubeconfig"))  # not needed for a dry run
    before = tree_snapshot(project, with_cache=True)
    result = run_cli("apply", "churn", "--target", "kubernetes", "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == DRY_RUN
    assert tree_snapshot(project, with_cache=True) == before  # not even a parse-cache entry


def test_the_cli_generates_then_applies(project: Path, fake: FakeKubeApi) -> None:
    result = run_cli("apply", "churn", "--target", "kubernetes", "--serving-timeout", "30")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == (
        f"churn (dev): applied 15 objects to {fake.url}\n"
        "  RayJob/churn-train in ml-dev: jobDeploymentStatus Complete, jobStatus SUCCEEDED\n"
        "  ready: Deployment/churn-server in ml-dev, Rollout/churn-server in ml-dev\n")
    assert "applied CronJob/churn-drift in ml-dev" in result.stderr
    assert (project / "generated" / "churn" / "dev" / "k8s" / "rollout.yaml").is_file()
    assert [r.path for r in fake.patches()] == CHURN_DEV_ORDER


def test_a_failure_exits_1_without_a_traceback(project: Path, fake: FakeKubeApi) -> None:
    fake.uninstall("ray.io")
    env = {**os.environ, "KUBECONFIG": os.environ["KUBECONFIG"]}
    out = subprocess.run([sys.executable, "-m", "framework.cli", "apply", "churn", "--target", "kubernetes"],
                         cwd=project, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines()[-1] == (
        "kubernetes: apply RayJob/churn-train in ml-dev: the CRD rayjobs.ray.io (ray.io/v1 RayJob) is not installed "
        "in the cluster; install KubeRay (the kuberay-operator Helm chart)")
    assert not [r for r in fake.patches() if "/services/" in r.path]


def test_apply_help_lists_the_kubernetes_target() -> None:
    text = " ".join(run_cli("apply", "--help").stdout.split())
    assert "or kubernetes (server-side apply of generated/<recipe>/<env>/ to the current kubeconfig's cluster" in text


def test_an_unknown_target_lists_the_targets(project: Path) -> None:
    result = run_cli("apply", "churn", "--target", "nomad")
    assert result.exit_code == 1
    assert result.stderr.strip() == "--target: unknown target 'nomad'; use local, ray or kubernetes"


def test_the_kubernetes_client_is_imported_only_when_applying() -> None:
    code = ("import sys, framework.cli, framework.api, framework.runtime.kubernetes.apply; "
            "print('kubernetes' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_inside_a_pod_the_in_cluster_config_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "6443")
    assert _error().startswith("kubernetes: the in-cluster configuration is unusable: ")  # no service account token here


# --- what the CI pipeline's jobs apply ---------------------------------------------------
def test_a_deploy_job_skips_training_and_runs_the_built_tag(project: Path, fake: FakeKubeApi) -> None:
    result = run_cli("apply", "churn", "--target", "kubernetes", "--skip-training", "--image-tag", "3f2c1a9b")
    assert result.exit_code == 0, result.stderr
    assert [r.path for r in fake.patches()] == [p for p in CHURN_DEV_ORDER if p != RAYJOB]
    images = fake.applied_images()
    assert "ghcr.io/example/mlops-runtime:3f2c1a9b" in images  # fetch_model, the drift CronJob
    assert "ghcr.io/example/mlops-runtime:0.1.0" not in images
    assert any(image.startswith("nvcr.io/nvidia/tritonserver:") for image in images)  # other images stay
    committed = (project / "generated" / "churn" / "dev" / "k8s" / "drift-cronjob.yaml").read_text()
    assert "mlops-runtime:0.1.0" in committed and "3f2c1a9b" not in committed  # the files keep the recipe's tag


def test_the_image_tag_comes_from_the_environment_too(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_IMAGE_TAG", "abc123")
    result = run_cli("apply", "churn", "--target", "kubernetes", "--skip-training", "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert "RayJob" not in result.stdout and "1. apply ServiceAccount/mlops-runner in ml-dev" in result.stdout


def test_a_pytorchjob_train_job_applies_only_training_and_registers_without_aliases(project: Path, fake: FakeKubeApi) -> None:
    result = run_cli("apply", "churn", "--target", "kubernetes", "--training-only", "--register-only")
    # the fake marks the job done but trains nothing, so no version was registered: said as such
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "train: the training job finished, but no version of 'churn' registered since it started carries this "
        "recipe's hash: did the job write to another tracking.uri?")
    assert [r.path for r in fake.patches()] == CHURN_DEV_ORDER[:4]  # config, then the RayJob; no serving
    job = fake.patches()[-1].body
    assert job["spec"]["entrypoint"] == "python -m framework.runtime.training /etc/mlops/recipe.resolved.yaml --register-only"


@pytest.mark.parametrize(("args", "message"), [
    (["--image-tag", "v1"], "--image-tag: sets the image the cluster's manifests run: use it with --target kubernetes"),
    (["--target", "kubernetes", "--image-tag", "bad tag"], "--image-tag: 'bad tag' is not an image tag"),
    (["--skip-training"], "--skip-training: chooses among the cluster's manifests: use it with --target kubernetes"),
    (["--target", "kubernetes", "--register-only"], "--register-only: with --target kubernetes applies to the training "
                                                    "job alone: add --training-only"),
    (["--target", "kubernetes", "--skip-training", "--training-only"], "--training-only: and --skip-training leave "
                                                                       "nothing to apply together: use one"),
])
def test_ci_options_out_of_place_are_one_line(project: Path, args: list[str], message: str) -> None:
    result = run_cli("apply", "churn", *args)
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(message), result.stderr
