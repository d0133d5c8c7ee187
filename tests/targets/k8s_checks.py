"""Checks of generated Kubernetes manifests, shared by the target tests.

Every helper takes plain dicts (parsed YAML) and returns a list of problems (strings),
empty when all is well, so a test can assert `== []` and print every finding at once.
Pod specs are found by walking documents, so the same checks cover Deployments,
CronJobs, PyTorchJobs, RayJobs and RayServices.
"""

from __future__ import annotations

import json
import re
import subprocess
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Iterator

import yaml

# Kubernetes minors every core object must validate for, strictly (kubernetes-validate
# ships a strict schema per minor; each release adds, deprecates and relaxes fields).
K8S_VERSIONS = tuple(f"1.{minor}" for minor in range(31, 38))

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
LABEL_MAX = 63
CRONJOB_NAME_MAX = 52  # the controller appends an 11-character suffix to Job names
CORE_GROUPS = ("apps/", "batch/", "autoscaling/", "policy/", "networking.k8s.io/", "rbac.authorization.k8s.io/")


# --- loading ---------------------------------------------------------------------------
def documents(artifacts: Iterable[Any]) -> list[tuple[str, dict[str, Any]]]:
    """(path, document) of every YAML document of the given Artifacts."""
    result = []
    for artifact in artifacts:
        for doc in yaml.safe_load_all(artifact.text):
            if doc is not None:
                result.append((artifact.path, doc))
    return result


def is_core(doc: dict[str, Any]) -> bool:
    api = doc["apiVersion"]
    return api == "v1" or api.startswith(CORE_GROUPS)


def of_kind(docs: Iterable[tuple[str, dict[str, Any]]], kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in docs if doc["kind"] == kind]


def one(docs: Iterable[tuple[str, dict[str, Any]]], kind: str) -> dict[str, Any]:
    found = of_kind(docs, kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


# --- validators ------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _kubernetes_validate():
    """kubernetes_validate with its schema reader memoized: validate() otherwise reads and
    parses the version's _definitions.json (megabytes) on every call, 7x the validation
    itself. Validators only read the parsed schemas, so sharing them is safe."""
    import kubernetes_validate
    from kubernetes_validate import utils

    utils.schema_contents = lru_cache(maxsize=None)(utils.schema_contents)
    return kubernetes_validate


def validate_core(doc: dict[str, Any], versions: Iterable[str] = K8S_VERSIONS) -> list[str]:
    """kubernetes-validate in strict mode (unknown fields are errors), at each version."""
    kubernetes_validate = _kubernetes_validate()
    problems = []
    for version in versions:
        try:
            used = kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as error:  # a jsonschema error: keep it short
            where = ".".join(map(str, error.absolute_path))
            problems.append(f"{version} {doc['kind']}/{doc['metadata']['name']}: {where}: {error.message}")
        else:  # it falls back to an older minor's schema when it lacks this one's
            if used != version:
                problems.append(f"{version}: kubernetes-validate has no schema for it (used {used})")
    return problems


@lru_cache(maxsize=None)
def _crd_validator(schemas_dir: str, api_version: str, kind: str):
    import jsonschema

    group, version = api_version.split("/")
    path = Path(schemas_dir) / group / f"{kind.lower()}_{version}.json"
    # Go's regexp accepts a flag group after the anchor (`^(?i)...`, in the PrometheusRule
    # CRD); Python's re wants flags first. Same language, so move them (SOURCES.md caveat).
    schema = json.loads(path.read_text().replace('"^(?i)', '"(?i)^'))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def validate_crd(doc: dict[str, Any], schemas_dir: Path) -> list[str]:
    """A custom resource against the JSON Schema extracted from its CRD."""
    validator = _crd_validator(str(schemas_dir), doc["apiVersion"], doc["kind"])
    name = doc["metadata"].get("name") or doc["metadata"].get("generateName")  # the batch RayJob: generateName
    return [
        f"{doc['kind']}/{name}: {'.'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(doc)
    ]


def run_checkov(checkov: Path, directory: Path) -> dict[str, Any]:
    """checkov's kubernetes checks over a directory: its JSON report (failed checks only,
    which halves the run; the summary still counts passed and skipped checks).
    `--skip-download`: nothing is fetched from Prisma Cloud (offline, deterministic)."""
    proc = subprocess.run(
        [str(checkov), "-d", str(directory), "--framework", "kubernetes", "-o", "json", "--quiet",
         "--skip-download"],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.stdout.strip(), f"checkov wrote no report (exit {proc.returncode}): {proc.stderr[-2000:]}"
    report = json.loads(proc.stdout)
    report = report[0] if isinstance(report, list) else report
    report["exit_code"] = proc.returncode
    return report


def checkov_failures(report: dict[str, Any]) -> list[str]:
    return [
        f"{f['check_id']} {f['check_name']}: {f['file_path']} {f['resource']}"
        for f in report["results"].get("failed_checks", [])
    ]


def checkov_skip_annotations(doc: dict[str, Any]) -> dict[str, str]:
    """check id -> reason of the `checkov.io/skip<N>` annotations of a document."""
    annotations = doc["metadata"].get("annotations") or {}
    return dict(
        value.split("=", 1) for key, value in annotations.items() if key.startswith("checkov.io/skip")
    )


# --- pods ------------------------------------------------------------------------------
def pod_specs(doc: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, pod spec) of every pod spec inside a document (any dict with containers)."""
    if isinstance(doc, dict):
        if isinstance(doc.get("containers"), list):
            yield path or "spec", doc
            return
        for key, value in doc.items():
            yield from pod_specs(value, f"{path}.{key}" if path else key)
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            yield from pod_specs(value, f"{path}[{i}]")


def pod_templates(doc: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, template) of every pod template ({metadata, spec: {containers}})."""
    if isinstance(doc, dict):
        spec = doc.get("spec")
        if isinstance(spec, dict) and isinstance(spec.get("containers"), list) and "metadata" in doc:
            yield path, doc
            return
        for key, value in doc.items():
            yield from pod_templates(value, f"{path}.{key}" if path else key)
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            yield from pod_templates(value, f"{path}[{i}]")


def containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return list(pod.get("initContainers") or []) + list(pod["containers"])


def check_container(container: dict[str, Any], pod: dict[str, Any]) -> list[str]:
    """Requests and limits, secure context, pinned image, writable paths on volumes."""
    name = container["name"]
    problems = []
    resources = container.get("resources") or {}
    for kind in ("requests", "limits"):
        for resource in ("cpu", "memory"):
            if resource not in (resources.get(kind) or {}):
                problems.append(f"{name}: no {resource} {kind}")
    ctx = container.get("securityContext") or {}
    expected = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True}
    for key, value in expected.items():
        if ctx.get(key) is not value:
            problems.append(f"{name}: securityContext.{key} is {ctx.get(key)!r}, expected {value!r}")
    if ctx.get("privileged"):
        problems.append(f"{name}: privileged")
    if (ctx.get("capabilities") or {}).get("drop") != ["ALL"]:
        problems.append(f"{name}: capabilities do not drop ALL")
    seccomp = (ctx.get("seccompProfile") or (pod.get("securityContext") or {}).get("seccompProfile") or {})
    if seccomp.get("type") != "RuntimeDefault":
        problems.append(f"{name}: seccomp profile is not RuntimeDefault")
    image = container.get("image", "")
    untagged = ":" not in image.rsplit("/", 1)[-1] and "@" not in image
    if untagged or image.endswith(":latest"):
        problems.append(f"{name}: image {image!r} is not pinned")
    volumes = {v["name"] for v in pod.get("volumes") or []}
    for mount in container.get("volumeMounts") or []:
        if mount["name"] not in volumes:
            problems.append(f"{name}: mounts undeclared volume {mount['name']!r}")
    return problems


def check_pod(pod: dict[str, Any]) -> list[str]:
    problems = []
    ctx = pod.get("securityContext") or {}
    if ctx.get("runAsNonRoot") is not True:
        problems.append("pod securityContext.runAsNonRoot is not true")
    if pod.get("automountServiceAccountToken") is not False:
        problems.append("pod mounts the service account token")
    names = [c["name"] for c in containers(pod)]
    if len(names) != len(set(names)):
        problems.append(f"duplicate container names {names}")
    for container in containers(pod):
        problems += check_container(container, pod)
        env_names = [e["name"] for e in container.get("env") or []]
        if len(env_names) != len(set(env_names)):
            problems.append(f"{container['name']}: duplicate env {env_names}")
    return problems


def writable_paths(container: dict[str, Any], pod: dict[str, Any]) -> list[str]:
    """Mount paths of the container's writable emptyDir volumes."""
    empty = {v["name"] for v in pod.get("volumes") or [] if "emptyDir" in v}
    return [m["mountPath"] for m in container.get("volumeMounts") or [] if m["name"] in empty and not m.get("readOnly")]


def gpus(container: dict[str, Any]) -> int:
    return int((container.get("resources") or {}).get("limits", {}).get("nvidia.com/gpu", 0))


def check_gpu_scheduling(pod: dict[str, Any], gpu_type: str | None) -> list[str]:
    """A pod with GPUs tolerates the GPU taint and, given a type, selects its nodes."""
    if not any(gpus(c) for c in containers(pod)):
        return []
    problems = []
    if not any(t.get("key") == "nvidia.com/gpu" for t in pod.get("tolerations") or []):
        problems.append("GPU pod does not tolerate nvidia.com/gpu")
    if gpu_type and (pod.get("nodeSelector") or {}).get("nvidia.com/gpu.product") != gpu_type:
        problems.append(f"GPU pod does not select nvidia.com/gpu.product={gpu_type}")
    return problems


# --- references ------------------------------------------------------------------------
def referenced_configmaps(pod: dict[str, Any]) -> set[str]:
    names = {v["configMap"]["name"] for v in pod.get("volumes") or [] if "configMap" in v}
    for c in containers(pod):
        names |= {e["valueFrom"]["configMapKeyRef"]["name"] for e in c.get("env") or []
                  if "configMapKeyRef" in e.get("valueFrom", {})}
        names |= {s["configMapRef"]["name"] for s in c.get("envFrom") or [] if "configMapRef" in s}
    return names


def referenced_secrets(pod: dict[str, Any]) -> set[tuple[str, str | None]]:
    """(name, key) of every Secret a pod reads (key None for whole-Secret references)."""
    refs: set[tuple[str, str | None]] = {(v["secret"]["secretName"], None) for v in pod.get("volumes") or [] if "secret" in v}
    refs |= {(s["name"], None) for s in pod.get("imagePullSecrets") or []}
    for c in containers(pod):
        refs |= {(e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
                 for e in c.get("env") or [] if "secretKeyRef" in e.get("valueFrom", {})}
        refs |= {(s["secretRef"]["name"], None) for s in c.get("envFrom") or [] if "secretRef" in s}
    return refs


def check_names(doc: dict[str, Any]) -> list[str]:
    name = doc["metadata"]["name"]
    kind = doc["kind"]
    problems = []
    pattern = DNS1035_LABEL if kind == "Service" else DNS1123_LABEL
    if len(name) > LABEL_MAX or not pattern.match(name):
        problems.append(f"{kind}/{name}: not a DNS label of at most {LABEL_MAX} characters")
    if kind == "CronJob" and len(name) > CRONJOB_NAME_MAX:
        problems.append(f"CronJob/{name}: longer than {CRONJOB_NAME_MAX} characters")
    namespace = doc["metadata"].get("namespace")
    if namespace is not None and not DNS1123_LABEL.match(namespace):
        problems.append(f"{kind}/{name}: namespace {namespace!r} is not a DNS label")
    for _, pod in pod_specs(doc.get("spec", {})):
        for c in containers(pod):
            if not DNS1123_LABEL.match(c["name"]):
                problems.append(f"{kind}/{name}: container name {c['name']!r} is not a DNS label")
            for p in c.get("ports") or []:
                if "name" in p and (len(p["name"]) > 15 or not DNS1123_LABEL.match(p["name"])):
                    problems.append(f"{kind}/{name}: port name {p['name']!r} is not an IANA service name")
    return problems


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a label selector (matchLabels form, or a Service's plain map) selects labels."""
    assert "matchExpressions" not in selector, "matchExpressions are not supported by this check"
    match = selector["matchLabels"] if "matchLabels" in selector else selector
    return bool(match) and all(labels.get(k) == v for k, v in match.items())


def container_port_names(pod: dict[str, Any]) -> set[str]:
    return {p["name"] for c in pod["containers"] for p in c.get("ports") or [] if "name" in p}


def check_service_targets(service: dict[str, Any], template: dict[str, Any]) -> list[str]:
    """The Service selects the template's pods and every targetPort names one of their ports."""
    problems = []
    if not selects(service["spec"]["selector"], template["metadata"]["labels"]):
        problems.append(f"Service/{service['metadata']['name']} does not select the pod template labels")
    names = container_port_names(template["spec"])
    for port in service["spec"]["ports"]:
        if port.get("targetPort") not in names:
            problems.append(f"Service port {port.get('name')}: targetPort {port.get('targetPort')!r} names no container port {sorted(names)}")
    return problems
