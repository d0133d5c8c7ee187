"""The batch job: `ray/batch-rayjob.yaml` (a KubeRay RayJob running the batch entrypoint,
checked against the vendored RayJob CRD) and, with batch.schedule, `k8s/batch-cronjob.yaml`
(launcher ServiceAccount, Role, RoleBinding, the RayJob's ConfigMap and the CronJob,
checked by kubernetes-validate strict, for every minor, and checkov in
test_kubernetes.py, which renders every variant). Structural checks here."""

from __future__ import annotations

import json
import shlex

import pytest
import yaml

from framework.recipe.types import duration_seconds, quantity_value
from framework.runtime.batch import launch
from framework.runtime.kubernetes.objects import KubeObject, parse, retagged
from framework.targets import batch as batch_target
from framework.targets import common, kubernetes, render_all
from framework.targets import ray as ray_target
from framework.targets.common import Names
from framework.targets.kubernetes import batch as batch_schedule
from tests.targets import k8s_checks as k8s
from tests.targets.conftest import CRD_SCHEMAS, VARIANTS, load_variant

RAYJOB = "ray/batch-rayjob.yaml"
CRONJOB = "k8s/batch-cronjob.yaml"
PROD_ENTRYPOINT = (
    "python -m framework.runtime.batch /etc/mlops/recipe.resolved.yaml --input s3://example-ml-data/churn/prod/customers/ "
    "--output s3://example-ml-data/churn/prod/scores/ --alias champion --overwrite"
)


def _artifacts(recipe) -> dict[str, str]:
    return {a.path: a.text for a in render_all(recipe) if a.scope == "env"}


def _rayjob(recipe) -> dict:
    return yaml.safe_load(_artifacts(recipe)[RAYJOB])


def _schedule_docs(recipe) -> dict[str, dict]:
    return {doc["kind"]: doc for doc in yaml.safe_load_all(_artifacts(recipe)[CRONJOB])}


# --- which recipes -------------------------------------------------------------------------
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_rendered_when_the_recipe_asks_for_it(variant: str):
    recipe = load_variant(variant)
    paths = set(_artifacts(recipe))
    assert (RAYJOB in paths) == (recipe.model.kind == "tabular" and recipe.batch.on_cluster)
    assert (CRONJOB in paths) == (RAYJOB in paths and recipe.batch.schedule is not None)


def test_the_example_scores_in_staging_by_hand_and_in_prod_on_schedule():
    assert RAYJOB not in _artifacts(load_variant("churn-dev"))
    staging = _artifacts(load_variant("churn-staging"))
    assert RAYJOB in staging and CRONJOB not in staging
    prod = _artifacts(load_variant("churn-prod"))
    assert RAYJOB in prod and CRONJOB in prod
    assert not any("batch" in path for path in _artifacts(load_variant("support-prod")))


# --- the RayJob ------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", sorted(v for v in VARIANTS if batch_target.enabled(load_variant(v))))
def test_rayjob_matches_the_kuberay_crd(variant: str):
    job = _rayjob(load_variant(variant))
    assert k8s.validate_crd(job, CRD_SCHEMAS) == []
    broken = json.loads(json.dumps(job))
    broken["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["replicass"] = 2
    assert any("replicass" in p for p in k8s.validate_crd(broken, CRD_SCHEMAS))


def test_rayjob_runs_the_batch_entrypoint_sized_from_the_batch_section():
    recipe = load_variant("churn-prod")
    batch = recipe.batch
    job = _rayjob(recipe)
    meta, spec = job["metadata"], job["spec"]
    assert meta == {"generateName": "churn-batch-", "namespace": "ml-prod", "labels": common.labels(recipe, "batch")}
    assert spec["entrypoint"] == PROD_ENTRYPOINT
    assert shlex.split(spec["entrypoint"])[:3] == ["python", "-m", "framework.runtime.batch"]
    assert spec["shutdownAfterJobFinishes"] is True and spec["ttlSecondsAfterFinished"] == ray_target.RAYJOB_TTL_SECONDS
    assert spec["activeDeadlineSeconds"] == int(duration_seconds(batch.timeout)) == 7200
    assert spec["backoffLimit"] == 1
    env = yaml.safe_load(spec["runtimeEnvYAML"])["env_vars"]
    assert env == {"MLFLOW_TRACKING_URI": recipe.tracking.uri, "MLOPS_RECIPE": "/etc/mlops/recipe.resolved.yaml",
                   "RAY_USAGE_STATS_ENABLED": "0"}

    cluster = spec["rayClusterSpec"]
    assert cluster["rayVersion"] == ray_target.RAY_VERSION
    head = cluster["headGroupSpec"]
    assert head["rayStartParams"] == {"dashboard-host": "0.0.0.0", "num-cpus": "1"}  # Ray Data's reads
    (head_container,) = head["template"]["spec"]["containers"]
    assert head_container["resources"] == common.resources(batch.head.cpu, batch.head.memory)
    (workers,) = cluster["workerGroupSpecs"]
    assert workers["replicas"] == workers["minReplicas"] == workers["maxReplicas"] == batch.actors == 4
    assert workers["rayStartParams"] == {}
    (worker,) = workers["template"]["spec"]["containers"]
    assert quantity_value(worker["resources"]["limits"]["cpu"]) == batch.cpus_per_actor
    assert worker["resources"] == common.resources("1", batch.memory_per_actor)
    assert "nodeSelector" not in workers["template"]["spec"] and "tolerations" not in workers["template"]["spec"]


def test_rayjob_reuses_the_training_rayjobs_pods():
    """Same image, security, environment (secrets by reference), recipe volume and
    submitter as the training RayJob: only labels, sizes and the head's CPUs differ."""
    recipe = load_variant("churn-prod")
    batch_spec = _rayjob(recipe)["spec"]
    train_spec = yaml.safe_load(_artifacts(recipe)["ray/rayjob.yaml"])["spec"]
    assert batch_spec["runtimeEnvYAML"] == train_spec["runtimeEnvYAML"]

    def shape(template: dict) -> dict:
        pod = json.loads(json.dumps(template["spec"]))
        for container in pod["containers"]:
            container.pop("resources")
        return pod

    batch_cluster, train_cluster = batch_spec["rayClusterSpec"], train_spec["rayClusterSpec"]
    assert shape(batch_cluster["headGroupSpec"]["template"]) == shape(train_cluster["headGroupSpec"]["template"])
    assert shape(batch_cluster["workerGroupSpecs"][0]["template"]) == shape(train_cluster["workerGroupSpecs"][0]["template"])
    assert batch_spec["submitterPodTemplate"]["spec"] == train_spec["submitterPodTemplate"]["spec"]
    (head,) = batch_cluster["headGroupSpec"]["template"]["spec"]["containers"]
    assert {"name": "MLFLOW_TRACKING_TOKEN",
            "valueFrom": {"secretKeyRef": {"name": "mlflow-credentials", "key": "token"}}} in head["env"]
    for where, pod in k8s.pod_specs(batch_spec):
        assert k8s.check_pod(pod) == [], where
        for container in pod["containers"]:
            assert container["securityContext"] == common.container_security_context(read_only_root=True)
            assert container["resources"]["requests"] == container["resources"]["limits"]
        assert pod["automountServiceAccountToken"] is False and pod["securityContext"]["runAsNonRoot"] is True


def test_generated_names_leave_room_for_kuberays():
    assert Names("churn").batch_job_prefix == "churn-batch-"
    longest = Names("a" * 24 + "-" + "b" * 5)  # 30 characters, the most a recipe name has
    prefix = longest.batch_job_prefix
    assert prefix == "a" * 24 + "-batch-"  # cut, and no '--' where the cut met a '-'
    assert len(prefix) + common.GENERATED_SUFFIX + len("-raycluster-xxxxx-head-svc") <= 63
    assert k8s.DNS1123_LABEL.match(prefix + "x1y2z")
    for name in (longest.batch_cronjob, longest.batch_launcher, longest.batch_rayjob_configmap):
        assert len(name) <= k8s.CRONJOB_NAME_MAX and k8s.DNS1123_LABEL.match(name)


# --- the schedule ------------------------------------------------------------------------------
def test_cronjob_creates_the_rayjob_on_schedule_and_waits_for_it():
    recipe = load_variant("churn-prod")
    docs = _schedule_docs(recipe)
    assert list(docs) == ["ServiceAccount", "Role", "RoleBinding", "ConfigMap", "CronJob"]
    cronjob = docs["CronJob"]
    spec = cronjob["spec"]
    assert cronjob["metadata"]["name"] == "churn-batch"
    assert (spec["schedule"], spec["timeZone"], spec["concurrencyPolicy"]) == ("0 3 * * *", "Etc/UTC", "Forbid")
    assert spec["startingDeadlineSeconds"] > 0
    job = spec["jobTemplate"]["spec"]
    rayjob_deadline = _rayjob(recipe)["spec"]["activeDeadlineSeconds"]
    assert job["activeDeadlineSeconds"] > rayjob_deadline  # the launcher outlives the RayJob it waits for
    failed, disrupted = job["podFailurePolicy"]["rules"]
    assert failed["action"] == "FailJob"
    assert failed["onExitCodes"] == {"containerName": "launch", "operator": "In", "values": [launch.FAILED_EXIT_CODE]}
    assert disrupted == {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}
    pod = job["template"]["spec"]
    assert pod["restartPolicy"] == "Never" and pod["serviceAccountName"] == "churn-batch-launcher"
    (container,) = pod["containers"]
    assert container["image"] == recipe.deploy.image
    assert container["command"] == ["python", "-m", "framework.runtime.batch.launch", "/etc/mlops-batch/rayjob.yaml"]
    env = {e["name"]: e for e in container["env"]}
    assert env[launch.RUN_ENV]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.labels['batch.kubernetes.io/controller-uid']"
    assert not k8s.referenced_secrets(pod), "the launcher reads no Secret"
    assert "recipe" not in {v["name"] for v in pod["volumes"]}


def test_the_configmap_carries_the_rayjob_byte_for_byte():
    recipe = load_variant("churn-prod")
    configmap = _schedule_docs(recipe)["ConfigMap"]
    assert configmap["metadata"]["name"] == "churn-batch-rayjob"
    assert configmap["data"] == {"rayjob.yaml": _artifacts(recipe)[RAYJOB]}
    volumes = {v["name"]: v for v in _schedule_docs(recipe)["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["volumes"]}
    assert volumes["batch-rayjob"]["configMap"]["name"] == "churn-batch-rayjob"


def test_only_the_launcher_may_create_rayjobs_and_nothing_else():
    recipe = load_variant("churn-prod")
    docs = _schedule_docs(recipe)
    assert docs["ServiceAccount"]["metadata"]["name"] == "churn-batch-launcher"
    assert docs["ServiceAccount"]["automountServiceAccountToken"] is False
    assert docs["Role"]["rules"] == [{"apiGroups": ["ray.io"], "resources": ["rayjobs"], "verbs": ["create", "get", "list"]}]
    binding = docs["RoleBinding"]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "churn-batch-launcher"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "churn-batch-launcher", "namespace": "ml-prod"}]
    # The one pod of the recipe that calls the API: an expiring projected token, where
    # in-cluster clients read it, for this container only (no automount).
    pod = docs["CronJob"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/var/run/secrets/kubernetes.io/serviceaccount"]
    assert mount["readOnly"] is True
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    sources = volume["projected"]["sources"]
    assert sources[0] == {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}}
    assert {"key": "ca.crt", "path": "ca.crt"} in sources[1]["configMap"]["items"]
    # every other pod of the recipe keeps its API token out
    for _, doc in k8s.documents(kubernetes.render(recipe)):
        for _, other in k8s.pod_specs(doc):
            if other is not pod and other.get("serviceAccountName") != "churn-batch-launcher":
                assert not any("projected" in v for v in other.get("volumes", []))


def test_schedule_objects_pass_kubernetes_validate_strict():
    """Also covered variant by variant in test_kubernetes.py; here every minor, in one place."""
    docs = list(_schedule_docs(load_variant("churn-prod")).values())
    assert [p for doc in docs for p in k8s.validate_core(doc)] == []


def test_apply_applies_the_schedule_but_not_the_rayjob():
    """`apply --target kubernetes` sets up the schedule; scoring itself is asked for."""
    artifacts = _artifacts(load_variant("churn-prod"))
    objects = parse({path: text for path, text in artifacts.items() if path.endswith(".yaml")})
    kinds = {(o.source, o.kind) for o in objects}
    assert (CRONJOB, "CronJob") in kinds and (CRONJOB, "Role") in kinds
    assert not any(o.source == RAYJOB for o in objects)


def test_a_deploy_retags_the_image_of_the_scheduled_rayjob_too():
    recipe = load_variant("churn-prod")
    docs = list(yaml.safe_load_all(_artifacts(recipe)[CRONJOB]))
    objects = [KubeObject(d["apiVersion"], d["kind"], d["metadata"]["name"], "ml-prod", d, CRONJOB) for d in docs]
    image = recipe.deploy.image
    new = retagged(objects, image, "abc123")
    configmap = next(o for o in new if o.kind == "ConfigMap").body["data"]["rayjob.yaml"]
    rayjob = yaml.safe_load(configmap)
    images = {c["image"] for _, pod in k8s.pod_specs(rayjob["spec"]) for c in pod["containers"]}
    assert images == {"ghcr.io/example/mlops-runtime:abc123"}
    cronjob = next(o for o in new if o.kind == "CronJob").body
    assert {c["image"] for _, pod in k8s.pod_specs(cronjob) for c in pod["containers"]} == images
    recipe_configmap = common.resolved_recipe_yaml(recipe)
    assert f"image: {image}\n" in recipe_configmap  # the resolved recipe is never rewritten
    (kept,) = retagged([KubeObject("v1", "ConfigMap", "churn-recipe", "ml-prod", {"data": {"r": recipe_configmap}})],
                       image, "abc123")
    assert kept.body["data"]["r"] == recipe_configmap


def test_launcher_exit_code_agrees():
    assert batch_schedule.LAUNCH_FAILED_EXIT_CODE == launch.FAILED_EXIT_CODE
    assert batch_schedule.RUN_LABEL_ENV == launch.RUN_ENV
