"""Rules mainly about `batch`: the batch RayJob (ray/batch-rayjob.yaml) and its CronJob,
which score `batch.input` into `batch.output` on a cluster: both keys or neither, only
tabular models in ONNX, data the cluster can reach, and an output apart from the input.
"""

from __future__ import annotations

from collections.abc import Iterator

from framework.recipe.checks.base import Violation, check
from framework.recipe.checks.data import is_relative_uri, is_remote_uri
from framework.recipe.recipe import Recipe
from framework.recipe.serving import TABULAR_SERVING


@check
def batch_job_needs_input_and_output(r: Recipe) -> Iterator[Violation]:
    batch = r.batch
    missing = [f"batch.{key}" for key, value in (("input", batch.input), ("output", batch.output)) if value is None]
    if batch.schedule is not None and missing:
        yield Violation(
            ("batch.schedule", "batch.input", "batch.output"),
            f"batch.schedule '{batch.schedule}' starts the batch RayJob, which scores batch.input into batch.output; "
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set: set both, or drop batch.schedule",
        )
    elif len(missing) == 1:
        given = "batch.output" if missing[0] == "batch.input" else "batch.input"
        yield Violation(
            (given, missing[0]),
            f"{given} is set but {missing[0]} is not: the batch RayJob scores batch.input into batch.output; "
            "set both, or neither",
        )


@check
def batch_job_scores_tabular_models(r: Recipe) -> Iterator[Violation]:
    if r.model.kind == "tabular":
        return
    for key, value in (("input", r.batch.input), ("output", r.batch.output)):
        if value is not None:
            yield Violation(
                (f"batch.{key}", "model.kind"),
                f"batch.{key} sets up the batch RayJob, which scores tabular models (`mlops batch`), but model.kind "
                f"is {r.model.kind}: drop batch.input and batch.output",
            )
            return


@check
def batch_job_scores_onnx(r: Recipe) -> Iterator[Violation]:
    """`mlops batch` scores the registered ONNX file with ONNX Runtime."""
    if r.batch.on_cluster and isinstance(r.serving, TABULAR_SERVING) and r.serving.format != "onnx":
        yield Violation(
            ("batch.input", "serving.format"),
            f"batch.input sets up the batch RayJob, which scores the registered ONNX model with ONNX Runtime, but "
            f"serving.format {r.serving.format} registers a TorchScript file: use serving.format onnx, or drop "
            "batch.input and batch.output",
        )


@check
def batch_job_reaches_its_data(r: Recipe) -> Iterator[Violation]:
    batch = r.batch
    if r.environment == "dev" or not batch.on_cluster:
        return
    if is_relative_uri(batch.input):
        yield Violation(
            ("batch.input", "environment"),
            f"batch.input '{batch.input}' is relative to the project, but the batch RayJob reads it on the cluster in "
            f"environment {r.environment}, which cannot see this checkout: use s3://bucket/path, gs://bucket/path, "
            "or an absolute path in the job's image",
        )
    if not is_remote_uri(batch.output):
        yield Violation(
            ("batch.output", "environment"),
            f"batch.output '{batch.output}' is a local path, but the batch RayJob writes it from a pod on the cluster "
            f"in environment {r.environment}, whose files go with the job: use s3://bucket/path or gs://bucket/path",
        )


def _folder(uri: str) -> str:
    return uri.rstrip("/") or uri


@check
def batch_output_apart_from_input(r: Recipe) -> Iterator[Violation]:
    batch = r.batch
    if not batch.on_cluster:
        return
    source, target = _folder(batch.input), _folder(batch.output)
    if source == target or source.startswith(target + "/") or target.startswith(source + "/"):
        yield Violation(
            ("batch.output", "batch.input"),
            f"batch.output '{batch.output}' overlaps batch.input '{batch.input}': each run of the batch RayJob "
            "replaces what batch.output holds, the input included; give the scores a folder of their own",
        )
