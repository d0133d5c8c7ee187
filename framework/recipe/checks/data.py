"""Rules mainly about `data`: its columns (target, features, extra columns, categorical
ones, expectations) and what the model and server make of them, and the data a training
job on a cluster can reach; with the URI helpers (`is_relative_uri`, `is_remote_uri`) the
batch rules share.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Iterator
from urllib.parse import urlparse

from framework.recipe.checks.base import Violation, check
from framework.recipe.model import TabularModel
from framework.recipe.recipe import Recipe
from framework.recipe.serving import TABULAR_SERVING
from framework.recipe.suggest import did_you_mean
from framework.signature import OUTPUTS


@check
def target_not_a_feature(r: Recipe) -> Iterator[Violation]:
    if r.data is not None and r.data.target in r.data.features:
        yield Violation(("data.target", "data.features"), f"data.target '{r.data.target}' must not be among data.features")


@check
def columns_unique(r: Recipe) -> Iterator[Violation]:
    if r.data is None:
        return
    for key, values in (("features", r.data.features), ("extra_columns", r.data.extra_columns)):
        repeated = sorted({c for c in values if values.count(c) > 1})
        if repeated:
            yield Violation((f"data.{key}",), f"data.{key} lists {', '.join(repeated)} more than once")
    both = sorted(set(r.data.features) & set(r.data.extra_columns))
    if both:
        yield Violation(("data.extra_columns", "data.features"), f"data.extra_columns {', '.join(both)} must not also be data.features")


@check
def categorical_are_features(r: Recipe) -> Iterator[Violation]:
    if r.data is None:
        return
    for column in r.data.categorical:
        if column not in r.data.features:
            yield Violation(
                ("data.categorical", "data.features"),
                f"data.categorical '{column}' is not in data.features{did_you_mean(column, r.data.features)}",
            )


@check
def features_are_not_outputs(r: Recipe) -> Iterator[Violation]:
    """Each raw feature is an input tensor named after its column (framework/signature.py):
    a column named like an output would make two tensors of one name."""
    if r.data is None or not isinstance(r.model, TabularModel):
        return
    outputs = set(OUTPUTS[r.model.task])
    for column in r.data.features:
        if column in outputs:
            yield Violation(
                ("data.features",),
                f"data.features '{column}' has the name of the model's output '{column}'; rename the column in the data",
            )


@check
def torchscript_inputs_are_identifiers(r: Recipe) -> Iterator[Violation]:
    """Triton's libtorch binds the inputs to forward()'s arguments by name."""
    if r.data is None or not isinstance(r.serving, TABULAR_SERVING) or r.serving.format != "torchscript":
        return
    for column in r.data.features:
        if not column.isidentifier() or keyword.iskeyword(column):
            yield Violation(
                ("data.features", "serving.format"),
                f"data.features '{column}' is not a Python identifier, which serving.format torchscript needs "
                "(Triton's libtorch binds inputs to forward() arguments); rename it or use serving.format onnx",
            )


@check
def expectations_name_columns(r: Recipe) -> Iterator[Violation]:
    if r.data is None:
        return
    columns = r.data.columns()
    for column, expectation in r.data.expectations.columns.items():
        if column not in columns:
            yield Violation(
                (f"data.expectations.columns.{column}", "data.features"),
                f"data.expectations.columns.{column} checks a column that is not in data.features, "
                f"data.target or data.extra_columns{did_you_mean(column, columns)}",
            )
        if expectation.min is not None and expectation.max is not None and expectation.min > expectation.max:
            yield Violation(
                (f"data.expectations.columns.{column}.min", f"data.expectations.columns.{column}.max"),
                f"data.expectations.columns.{column}.min ({expectation.min}) must be <= "
                f"data.expectations.columns.{column}.max ({expectation.max})",
            )


@check
def class_fraction_needs_classes(r: Recipe) -> Iterator[Violation]:
    if r.data is None or r.data.expectations.table.min_class_fraction is None:
        return
    if isinstance(r.model, TabularModel) and r.model.task == "regression":
        yield Violation(
            ("data.expectations.table.min_class_fraction", "model.task"),
            "data.expectations.table.min_class_fraction needs classes, but model.task is regression",
        )


# A job on a cluster starts in the image's working directory: nothing of the project's
# checkout is there. Read as runtime/data.py reads a URI: a scheme of two letters or more
# (s3://, gs://, https://) is remote; `file:` and plain paths are local, and relative
# unless they start at the root.
def is_relative_uri(uri: str) -> bool:
    """True when `uri` names a path relative to the project root."""
    parsed = urlparse(uri)
    if parsed.scheme.lower() == "file":
        return parsed.netloc not in ("", "localhost") or not parsed.path.startswith("/")
    if len(parsed.scheme) > 1:
        return False
    return not uri.startswith(("/", "\\")) and not re.match(r"^[A-Za-z]:[\\/]", uri)


def is_remote_uri(uri: str) -> bool:
    """True for an object store or other network URI (s3://, gs://, https://): what a pod
    on a cluster can reach without a volume."""
    scheme = urlparse(uri).scheme.lower()
    return len(scheme) > 1 and scheme != "file"


@check
def cluster_jobs_read_reachable_data(r: Recipe) -> Iterator[Violation]:
    if r.data is None or r.training is None or r.environment == "dev" or not is_relative_uri(r.data.source.uri):
        return
    job = "a RayJob" if r.training.engine == "ray" else "a PyTorchJob"
    yield Violation(
        ("data.source.uri", "training.engine", "environment"),
        f"data.source.uri '{r.data.source.uri}' is relative to the project, but training.engine {r.training.engine} "
        f"trains in {job} on the cluster in environment {r.environment}, which cannot see this checkout: use "
        "s3://bucket/path, gs://bucket/path, or an absolute path on a volume mounted in the job's pods",
    )


@check
def data_sources_that_are_read(r: Recipe) -> Iterator[Violation]:
    """`data.version` reads a file of the project's git repository at a revision (through
    DVC), so the file must be a path in the project. A Feast view's features are joined
    onto the entity rows by their timestamp column, which is no model input; its registry
    and online store must be reachable from the cluster's jobs and serving pods."""
    if r.data is None:
        return
    feast = r.data.source.feast
    if feast is not None:
        taken = {feast.timestamp_column: "data.source.feast.timestamp_column"}
        if feast.entity_key:
            taken[feast.entity_key] = "data.source.feast.entity_key"
        for column, key in taken.items():
            if column in r.data.features:
                yield Violation((key, "data.features"), f"{key} '{column}' is a column of the entity rows, "
                                                        "not a feature: remove it from data.features")
        if r.environment != "dev" and is_relative_uri(feast.registry):
            yield Violation(("data.source.feast.registry", "environment"),
                            f"data.source.feast.registry '{feast.registry}' is a file in the checkout, which the "
                            f"jobs and serving pods of environment {r.environment} cannot see: use an s3:// or "
                            "gs:// URI (or an absolute path on a shared volume)")
        if r.environment != "dev" and feast.online_store.type == "sqlite":
            yield Violation(("data.source.feast.online_store.type", "environment"),
                            f"an sqlite online store is a file on one machine, which the serving pods of "
                            f"environment {r.environment} cannot share: use type redis or postgres")
    if r.data.version is not None and is_remote_uri(r.data.source.uri):
        yield Violation(("data.version", "data.source.uri"),
                        f"data.version reads a file of the project's git repository at a revision (DVC), but "
                        f"data.source.uri is {r.data.source.uri}: use the project path DVC tracks, or drop data.version")
