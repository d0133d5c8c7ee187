"""The fake API server itself (tests/runtime/fake_kube_api.py), over HTTP: it answers as
kube-apiserver answers what apply sends, so the apply tests' error paths are the
cluster's own. The answers pinned here are kube's (Status bodies, messages, managedFields)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlencode

import pytest
import yaml

from framework.runtime.kubernetes.objects import read_env_dir
from tests.conftest import REPO
from tests.runtime.fake_kube_api import APPLY_PATCH, GONE, Crd, FakeKubeApi

DEPLOYMENT = "/apis/apps/v1/namespaces/ns/deployments/web"
RULE = "/apis/monitoring.coreos.com/v1/namespaces/ns/prometheusrules/alerts"
PLURALS = {"Namespace": "namespaces", "ServiceAccount": "serviceaccounts", "ConfigMap": "configmaps", "Secret": "secrets",
           "Service": "services", "PersistentVolumeClaim": "persistentvolumeclaims", "NetworkPolicy": "networkpolicies",
           "HorizontalPodAutoscaler": "horizontalpodautoscalers", "PodDisruptionBudget": "poddisruptionbudgets",
           "Role": "roles", "RoleBinding": "rolebindings", "PyTorchJob": "pytorchjobs"}


@pytest.fixture
def fake():
    api = FakeKubeApi().start()
    yield api
    api.stop()


def call(fake: FakeKubeApi, method: str, path: str, body: Any = None, content_type: str = "application/json",
         **query: str) -> tuple[int, dict[str, Any]]:
    url = fake.url + path + (f"?{urlencode(query)}" if query else "")
    request = urllib.request.Request(url, json.dumps(body).encode() if body is not None else None, method=method,
                                     headers={"Content-Type": content_type, "User-Agent": "OpenAPI-Generator/37.0.1/python"})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def apply(fake: FakeKubeApi, path: str, body: dict[str, Any], manager: str = "mlops", force: bool = False):
    return call(fake, "PATCH", path, body, APPLY_PATCH, fieldManager=manager, **({"force": "true"} if force else {}))


def deployment(replicas: int = 1, image: str = "web:1", labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "ns", "labels": labels or {"app": "web"}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}}, "template": {
                "metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": image}]}}}}


def rule(duration: str = "5m") -> dict[str, Any]:
    return {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule", "metadata": {"name": "alerts", "namespace": "ns"},
            "spec": {"groups": [{"name": "web", "rules": [{"alert": "Down", "expr": "up == 0", "for": duration}]}]}}


# --- server-side apply -------------------------------------------------------------------------
def test_apply_creates_with_the_servers_metadata_and_the_managers_fields(fake: FakeKubeApi) -> None:
    code, live = apply(fake, DEPLOYMENT, deployment())
    assert code == 201
    meta = live["metadata"]
    assert meta["generation"] == 1 and meta["resourceVersion"] and meta["uid"] and meta["creationTimestamp"].endswith("Z")
    (entry,) = meta["managedFields"]
    assert {k: v for k, v in entry.items() if k != "time"} == {
        "manager": "mlops", "operation": "Apply", "apiVersion": "apps/v1", "fieldsType": "FieldsV1", "fieldsV1": {
            "f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {"f:replicas": {}, "f:selector": {"f:matchLabels": {"f:app": {}}}, "f:template": {
                "f:metadata": {"f:labels": {"f:app": {}}},
                "f:spec": {"f:containers": {'k:{"name":"web"}': {".": {}, "f:image": {}, "f:name": {}}}}}}}}


def test_generation_moves_with_the_spec_only(fake: FakeKubeApi) -> None:
    _, first = apply(fake, DEPLOYMENT, deployment())
    code, same = apply(fake, DEPLOYMENT, deployment())
    assert code == 200 and same == first  # a no-op: resourceVersion and managedFields time included
    _, relabelled = apply(fake, DEPLOYMENT, deployment(labels={"app": "web", "tier": "front"}))
    assert relabelled["metadata"]["generation"] == 1
    assert int(relabelled["metadata"]["resourceVersion"]) > int(first["metadata"]["resourceVersion"])
    _, scaled = apply(fake, DEPLOYMENT, deployment(replicas=2))
    assert scaled["metadata"]["generation"] == 2
    assert call(fake, "GET", DEPLOYMENT)[1]["metadata"]["generation"] == 2  # status written by its controller: no bump


def test_a_field_another_manager_changed_conflicts_unless_forced(fake: FakeKubeApi) -> None:
    apply(fake, DEPLOYMENT, deployment())
    fake.edit(DEPLOYMENT, {"spec": {"replicas": 3}}, manager="kubectl-edit")
    assert apply(fake, DEPLOYMENT, deployment(replicas=1)) == (409, {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'Apply failed with 1 conflict: conflict with "kubectl-edit" using apps/v1: .spec.replicas',
        "reason": "Conflict", "details": {"causes": [
            {"reason": "FieldManagerConflict", "message": 'conflict with "kubectl-edit" using apps/v1', "field": ".spec.replicas"}]},
        "code": 409})
    assert apply(fake, DEPLOYMENT, deployment(replicas=3))[0] == 200  # the same value: owned together
    assert fake.managers(DEPLOYMENT)["kubectl-edit (Update)"] == {".spec.replicas"}
    code, live = apply(fake, DEPLOYMENT, deployment(replicas=1), force=True)
    assert code == 200 and live["spec"]["replicas"] == 1
    assert list(fake.managers(DEPLOYMENT)) == ["mlops (Apply)"]


def test_a_controllers_update_of_an_element_conflicts_on_that_field(fake: FakeKubeApi) -> None:
    service = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": "web"},
               "spec": {"hosts": ["web"], "http": [{"name": "primary", "route": [
                   {"destination": {"host": "web", "subset": "stable"}, "weight": 90},
                   {"destination": {"host": "web", "subset": "candidate"}, "weight": 10}]}]}}
    path = "/apis/networking.istio.io/v1/namespaces/ns/virtualservices/web"
    apply(fake, path, service)
    http = json.loads(json.dumps(service["spec"]["http"]))
    http[0]["route"][0]["weight"], http[0]["route"][1]["weight"] = 100, 0
    fake.edit(path, {"spec": {"http": http}}, manager="rollouts-controller")  # Argo Rollouts, a canary done
    assert apply(fake, path, service)[1]["message"] == (
        'Apply failed with 1 conflict: conflict with "rollouts-controller" using networking.istio.io/v1: '
        '.spec.http[name="primary"].route')


def test_conflicts_with_another_applier_list_each_field(fake: FakeKubeApi) -> None:
    apply(fake, DEPLOYMENT, deployment())
    apply(fake, DEPLOYMENT, deployment(replicas=4, image="web:2"), manager="ops", force=True)
    code, status = apply(fake, DEPLOYMENT, deployment())
    assert code == 409 and status["message"] == (
        'Apply failed with 2 conflicts: conflicts with "ops":\n- .spec.replicas\n- .spec.template.spec.containers[name="web"].image')
    assert [c["field"] for c in status["details"]["causes"]] == [
        ".spec.replicas", '.spec.template.spec.containers[name="web"].image']


def test_fields_a_manager_leaves_out_are_removed_unless_another_owns_them(fake: FakeKubeApi) -> None:
    two = deployment(labels={"app": "web", "tier": "front"})
    two["spec"]["template"]["spec"]["containers"].append({"name": "proxy", "image": "envoy:1"})
    apply(fake, DEPLOYMENT, two)
    fake.edit(DEPLOYMENT, {"metadata": {"labels": {"team": "ml"}}}, manager="kubectl-label")
    _, live = apply(fake, DEPLOYMENT, deployment())
    assert live["metadata"]["labels"] == {"app": "web", "team": "ml"}
    assert [c["name"] for c in live["spec"]["template"]["spec"]["containers"]] == ["web"]


def test_an_apply_needs_a_field_manager_and_the_apply_content_type(fake: FakeKubeApi) -> None:
    assert call(fake, "PATCH", DEPLOYMENT, deployment(), APPLY_PATCH) == (422, {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch',
        "reason": "Invalid", "details": {"group": "meta.k8s.io", "kind": "PatchOptions", "causes": [
            {"reason": "FieldValueRequired", "message": "Required value: is required for apply patch", "field": "fieldManager"}]},
        "code": 422})
    code, status = call(fake, "PATCH", DEPLOYMENT, deployment(), "application/merge-patch+json", fieldManager="mlops")
    assert (code, status["reason"]) == (415, "UnsupportedMediaType")
    assert fake.objects == {}


def test_an_apply_body_may_be_yaml(fake: FakeKubeApi) -> None:
    request = urllib.request.Request(f"{fake.url}{DEPLOYMENT}?fieldManager=kubectl", yaml.safe_dump(deployment()).encode(),
                                     method="PATCH", headers={"Content-Type": APPLY_PATCH})
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 201
    assert fake.objects[DEPLOYMENT]["spec"]["replicas"] == 1


# --- validation ---------------------------------------------------------------------------------
def test_a_custom_resource_against_its_crds_schema_is_422(fake: FakeKubeApi) -> None:
    bad = rule("5 minutes")
    del bad["spec"]["groups"][0]["rules"][0]["expr"]
    pattern = "^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
    duration = f'Invalid value: "5 minutes": spec.groups[0].rules[0].for in body should match \'{pattern}\''
    assert apply(fake, RULE, bad) == (422, {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": f'PrometheusRule.monitoring.coreos.com "alerts" is invalid: [spec.groups[0].rules[0].for: {duration}, '
                   "spec.groups[0].rules[0].expr: Required value]",
        "reason": "Invalid", "details": {"name": "alerts", "group": "monitoring.coreos.com", "kind": "PrometheusRule", "causes": [
            {"reason": "FieldValueInvalid", "message": duration, "field": "spec.groups[0].rules[0].for"},
            {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.groups[0].rules[0].expr"}]},
        "code": 422})
    assert apply(fake, RULE, rule())[0] == 201


def test_a_builtin_against_kubernetes_validate_is_422(fake: FakeKubeApi) -> None:
    bad = deployment()
    bad["spec"]["replicas"] = "two"
    bad["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s"}}}]
    code, status = apply(fake, DEPLOYMENT, bad)
    assert (code, status["message"]) == (422, (
        'Deployment.apps "web" is invalid: [spec.replicas: Invalid value: "string": spec.replicas in body must be of type '
        'integer: "string", spec.template.spec.containers[0].env[0].valueFrom.secretKeyRef.key: Required value]'))
    assert [c["reason"] for c in status["details"]["causes"]] == ["FieldValueTypeInvalid", "FieldValueRequired"]


def test_a_field_not_in_the_schema_fails_an_apply_as_kube_does_and_a_create_keeps_it(fake: FakeKubeApi) -> None:
    bad = deployment()
    bad["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    assert apply(fake, DEPLOYMENT, bad) == (500, {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'failed to create typed patch object (ns/web; apps/v1, Kind=Deployment): '
                   '.spec.template.spec.containers[name="web"].imagePullPolicyy: field not declared in schema',
        "code": 500})
    code, live = call(fake, "POST", "/apis/apps/v1/namespaces/ns/deployments", bad)  # fieldValidation Warn, its default
    assert code == 201
    (entry,) = live["metadata"]["managedFields"]  # no fieldManager: the User-Agent's product names the manager
    assert (entry["manager"], entry["operation"]) == ("OpenAPI-Generator", "Update")
    assert call(fake, "POST", "/apis/apps/v1/namespaces/ns/deployments", bad)[1]["message"] == (
        'deployments.apps "web" already exists')


@pytest.mark.parametrize("recipe", ["churn", "churn-features", "support-assistant"])
def test_every_generated_object_is_accepted(fake: FakeKubeApi, recipe: str) -> None:
    """The fake's schemas are the target tests': what generate writes passes them."""
    for env_dir in sorted((REPO / "generated" / recipe).iterdir()):
        for rel, text in read_env_dir(env_dir).items():
            for doc in yaml.load_all(text, Loader=yaml.CSafeLoader):
                group_version, kind, meta = doc["apiVersion"], doc["kind"], doc["metadata"]
                base = f"/api/{group_version}" if "/" not in group_version else f"/apis/{group_version}"
                where = "" if kind == "Namespace" else f"/namespaces/{meta['namespace']}"
                path = f"{base}{where}/{PLURALS.get(kind, kind.lower() + 's')}/{meta['name']}"
                code, answer = apply(fake, path, doc, force=True)
                assert code in (200, 201), f"{env_dir}/{rel}: {answer['message']}"


# --- discovery ---------------------------------------------------------------------------------
def test_discovery_says_what_is_served_per_group_and_version(fake: FakeKubeApi) -> None:
    groups = {g["name"]: [v["version"] for v in g["versions"]] for g in call(fake, "GET", "/apis")[1]["groups"]}
    assert groups["ray.io"] == ["v1"] and groups["argoproj.io"] == ["v1alpha1"] and groups["autoscaling"] == ["v2", "v1"]
    assert call(fake, "GET", "/apis/ray.io")[1]["preferredVersion"] == {"groupVersion": "ray.io/v1", "version": "v1"}
    resources = call(fake, "GET", "/apis/ray.io/v1")[1]["resources"]
    assert [(r["name"], r["kind"], r["namespaced"]) for r in resources] == [("rayjobs", "RayJob", True),
                                                                          ("rayservices", "RayService", True)]
    assert "configmaps" in [r["name"] for r in call(fake, "GET", "/api/v1")[1]["resources"]]
    not_found = (404, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                       "message": "the server could not find the requested resource", "reason": "NotFound",
                       "details": {}, "code": 404})
    assert call(fake, "GET", "/apis/ray.io/v1alpha1") == not_found  # a version the group does not serve
    assert apply(fake, "/apis/ray.io/v1alpha1/namespaces/ns/rayjobs/x", {"metadata": {"name": "x"}}) == not_found
    assert call(fake, "GET", "/apis/apps/v1beta1") == not_found


def test_a_crd_not_installed_answers_404_everywhere(fake: FakeKubeApi) -> None:
    fake.uninstall("ray.io")
    assert "ray.io" not in [g["name"] for g in call(fake, "GET", "/apis")[1]["groups"]]
    for path in ("/apis/ray.io", "/apis/ray.io/v1", "/apis/ray.io/v1/namespaces/ns/rayjobs",
                 "/apis/ray.io/v1/namespaces/ns/rayjobs/job"):
        assert call(fake, "GET", path)[0] == 404, path
    fake.install(Crd("ray.io", "RayJob", {"v1": None}))  # installed again, without a schema: anything goes
    assert apply(fake, "/apis/ray.io/v1/namespaces/ns/rayjobs/job", {
        "apiVersion": "ray.io/v1", "kind": "RayJob", "metadata": {"name": "job"}, "spec": {"anything": 1}})[0] == 201
    assert call(fake, "GET", "/apis/ray.io/v1/namespaces/ns/rayservices/x")[0] == 404


# --- deletion and the objects' lives ----------------------------------------------------------
def test_finalizers_keep_a_deleted_object_for_a_few_reads(fake: FakeKubeApi) -> None:
    fake.finalizers["deployments/web"] = ["example.com/cleanup"]
    apply(fake, DEPLOYMENT, deployment())
    code, deleting = call(fake, "DELETE", DEPLOYMENT, propagationPolicy="Foreground")
    assert code == 200 and deleting["metadata"]["deletionTimestamp"]
    assert deleting["metadata"]["finalizers"] == ["example.com/cleanup", "foregroundDeletion"]
    assert [call(fake, "GET", DEPLOYMENT)[0] for _ in range(4)] == [200, 200, 200, 404]


def test_without_finalizers_a_deleted_object_goes_at_once(fake: FakeKubeApi) -> None:
    apply(fake, DEPLOYMENT, deployment())
    code, status = call(fake, "DELETE", DEPLOYMENT, propagationPolicy="Foreground")
    assert (code, status["status"]) == (200, "Success")
    assert call(fake, "GET", DEPLOYMENT)[1]["message"] == 'deployments.apps "web" not found'
    assert call(fake, "DELETE", DEPLOYMENT)[0] == 404


def test_a_stuck_finalizer_keeps_it_and_its_name(fake: FakeKubeApi) -> None:
    fake.finalizers["deployments/web"] = ["example.com/cleanup"]
    fake.finalize_gets = None
    call(fake, "POST", "/apis/apps/v1/namespaces/ns/deployments", deployment())
    call(fake, "DELETE", DEPLOYMENT)
    assert [call(fake, "GET", DEPLOYMENT)[0] for _ in range(5)] == [200] * 5
    assert call(fake, "POST", "/apis/apps/v1/namespaces/ns/deployments", deployment())[1]["message"] == (
        'object is being deleted: deployments.apps "web" already exists')


def test_a_progress_step_can_delete_the_object(fake: FakeKubeApi) -> None:
    apply(fake, DEPLOYMENT, deployment())
    fake.progress["deployments/web"] = [{"observedGeneration": 1}, GONE]
    assert [call(fake, "GET", DEPLOYMENT)[0] for _ in range(3)] == [200, 404, 404]


def test_objects_in_a_missing_namespace_cannot_be_created(fake: FakeKubeApi) -> None:
    fake.missing_namespaces.add("ns")
    code, status = apply(fake, DEPLOYMENT, deployment())
    assert (code, status["message"], status["details"]) == (404, 'namespaces "ns" not found', {"name": "ns", "kind": "namespaces"})
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns"}}
    assert apply(fake, "/api/v1/namespaces/ns", namespace)[0] == 201
    assert apply(fake, DEPLOYMENT, deployment())[0] == 201
