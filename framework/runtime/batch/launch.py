"""`python -m framework.runtime.batch.launch RAYJOB_YAML`: what the batch CronJob's pod
runs (k8s/batch-cronjob.yaml): create the batch RayJob from its manifest (the ConfigMap's
copy of ray/batch-rayjob.yaml, `metadata.generateName`) and wait until it finishes, so
the CronJob's `concurrencyPolicy: Forbid` keeps two runs apart.

One RayJob per Job: it is labelled with the Job's uid ($MLOPS_BATCH_RUN, from the pod's
`batch.kubernetes.io/controller-uid` label), and a retried pod that finds one waits for
it rather than creating another. Through the in-cluster service account (a Role allows
create, get and list on rayjobs.ray.io). Exit 0: the RayJob succeeded; 3: it failed
(KubeRay already retried it: the Job must not start another); 1: an error (no API
server, no permission...), which the Job retries.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from framework.contracts.entrypoints import BATCH_LAUNCH_FAILED_EXIT_CODE as FAILED_EXIT_CODE  # the Job fails at once on it
from framework.contracts.entrypoints import BATCH_RUN_ENV as RUN_ENV
from framework.errors import Location, MlopsError, Problem

RUN_LABEL = "mlops.dev/batch-run"
POLL_S = 10.0


def read_manifest(path: Path) -> dict[str, Any]:
    try:
        body = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise MlopsError([Problem(Location(str(path)), "", f"cannot read the RayJob manifest: {exc}")]) from None
    if not isinstance(body, dict) or body.get("kind") != "RayJob" or not isinstance(body.get("metadata"), dict):
        raise MlopsError([Problem(Location(str(path)), "", "not a RayJob manifest")])
    return body


def launch(kube, body: dict[str, Any], run: str | None, say: Callable[[str], None], poll_s: float = POLL_S,
           sleep: Callable[[float], None] = time.sleep):
    """Create (or, for a retried pod, find) the run's RayJob and wait until it finishes;
    returns its last k8s_ready.State."""
    from framework.runtime.kubernetes import errors as errors
    from framework.runtime.kubernetes.client import KubeApiError, KubeUnreachable
    from framework.runtime.kubernetes.objects import KubeObject
    from framework.runtime.kubernetes.ready import rayjob_state
    from framework.runtime.kubernetes.rest import collection_path, known

    meta = body["metadata"]
    namespace = meta.get("namespace") or "default"
    pending = KubeObject(body["apiVersion"], "RayJob", meta.get("name") or meta.get("generateName", ""), namespace, body)
    resource = known(pending)
    collection = collection_path(resource, namespace)
    if run:
        body = {**body, "metadata": {**meta, "labels": {**(meta.get("labels") or {}), RUN_LABEL: run}}}
    step, verb = f"create a RayJob {pending.name}... in {namespace}", "list"
    try:
        found = kube.request("GET", collection, [("labelSelector", f"{RUN_LABEL}={run}")]).get("items") if run else None
        if found:
            name = found[0]["metadata"]["name"]
            say(f"RayJob/{name} in {namespace} was created by this run's earlier pod: waiting for it")
        else:
            verb = "create"
            name = kube.request("POST", collection, body=body)["metadata"]["name"]
            say(f"created RayJob/{name} in {namespace}")
        step, verb, last = f"wait for RayJob/{name} in {namespace}", "get", ""
        while True:
            live = kube.get(f"{collection}/{name}")
            if live is None:
                raise errors.failure(step, "the RayJob was deleted before it finished")
            state = rayjob_state(live)
            if state.summary != last:
                say(f"RayJob/{name}: {state.summary}")
                last = state.summary
            if state.done or state.failed:
                return state
            sleep(poll_s)
    except (KubeApiError, KubeUnreachable) as exc:
        raise errors.request_failed(step, exc, pending, resource, verb) from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m framework.runtime.batch.launch", description=__doc__.splitlines()[0])
    parser.add_argument("manifest", type=Path, help="the batch RayJob's manifest (ray/batch-rayjob.yaml)")
    parser.add_argument("--run", default=os.environ.get(RUN_ENV) or None,
                        help=f"this run's id, labelled on the RayJob (default ${RUN_ENV})")
    parser.add_argument("--poll-s", type=float, default=POLL_S, help="seconds between looks at the RayJob")
    args = parser.parse_args(argv)
    from framework.runtime.kubernetes.client import Kube, load_configuration
    from framework.runtime.resolved import run_entrypoint

    def say(line: str) -> None:
        print(line, flush=True)

    def body() -> int:
        manifest = read_manifest(args.manifest)
        kube = Kube(load_configuration())
        try:
            state = launch(kube, manifest, args.run, say, args.poll_s)
        finally:
            kube.close()
        return FAILED_EXIT_CODE if state.failed else 0

    return run_entrypoint(body)


if __name__ == "__main__":
    sys.exit(main())
