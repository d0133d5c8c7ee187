"""The input of a batch run: a csv/parquet file or folder (local, file://, s3://, gs://
through fsspec), and its columns checked against the model before any work starts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from framework.errors import MlopsError, Problem

FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


@dataclass(frozen=True)
class InputFile:
    path: str  # a local path or a URL fsspec opens
    format: str  # csv or parquet


def _filesystem(uri: str):
    import fsspec

    if "://" in uri and not uri.startswith("file://"):
        try:
            return fsspec.core.url_to_fs(uri)
        except ImportError as error:
            raise MlopsError([Problem(None, "--input", f"cannot open {uri}: {error}")]) from None
    path = uri.removeprefix("file://")
    return fsspec.filesystem("file"), str(Path(path).resolve())


def list_inputs(uri: str) -> list[InputFile]:
    """The csv/parquet files at `uri` (a file, or every such file under a folder), sorted."""
    fs, path = _filesystem(uri)
    if not fs.exists(path):
        raise MlopsError([Problem(None, "--input", f"no such file or folder: {uri}")])
    if fs.isdir(path):
        names = sorted(p for p in fs.find(path) if Path(p).suffix.lower() in FORMATS and not Path(p).name.startswith((".", "_")))
        if not names:
            raise MlopsError([Problem(None, "--input", f"{uri} holds no .csv or .parquet file")])
    else:
        if Path(path).suffix.lower() not in FORMATS:
            raise MlopsError([Problem(None, "--input", f"{uri}: use a .csv or .parquet file, or a folder of them")])
        names = [path]
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    prefix = "" if protocol in ("file", "local") else f"{protocol}://"
    return [InputFile(f"{prefix}{name}", FORMATS[Path(name).suffix.lower()]) for name in names]


def columns_of(source: InputFile) -> dict[str, str]:
    """{column: kind} of a file without reading its rows: "number", "text" or "other"."""
    import pandas as pd

    if source.format == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = pq.read_schema(source.path)
        return {f.name: "number" if pa.types.is_integer(f.type) or pa.types.is_floating(f.type) or pa.types.is_boolean(f.type)
                else "text" if pa.types.is_string(f.type) or pa.types.is_large_string(f.type) else "other"
                for f in schema}
    head = pd.read_csv(source.path, nrows=200)
    return {c: "number" if pd.api.types.is_numeric_dtype(head[c]) else "text" for c in head.columns}


def check_columns(files: list[InputFile], pipeline, passed: list[str]) -> None:
    """Every feature (and id column passed through) in every file, numbers where the
    model wants numbers; one line per problem, before any scoring."""
    problems = []
    for source in files:
        found = columns_of(source)
        missing = [c for c in [*pipeline.features, *passed] if c not in found]
        if missing:
            problems.append(Problem(None, "--input", f"{source.path} has no column {', '.join(missing)} "
                                                     f"(the model takes {', '.join(pipeline.features)})"))
            continue
        numeric = [c for c in pipeline.features if c not in pipeline.categorical and found[c] not in ("number",)]
        nulls_only = [c for c in numeric if found[c] == "other"]
        text = [c for c in numeric if c not in nulls_only]
        if text:
            problems.append(Problem(None, "--input", f"{source.path}: column {', '.join(text)} holds text where the "
                                                     "model takes numbers"))
    if problems:
        raise MlopsError(problems)
