"""The current data a drift check compares with the reference, in the reference's
layout (raw feature columns, then the prediction columns):

* served traffic: the sampled request log (`<state_dir>/requests/<registered model>/`,
  serving/request_log.py) of the last `monitoring.drift.window`, with one-hot columns
  (`contract=monthly`) folded back into categories; predictions from the logged outputs
  of the version the reference belongs to; or
* a file (`--current PATH`, csv or parquet) laid out like the training data; its
  predictions come from running the reference's model version on it, unless the file
  carries the output columns itself.

A file that cannot be compared (missing or extra columns, a column whose type changed)
is refused with one error naming the columns, never a traceback.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from framework.errors import Location, MlopsError, Problem
from framework.runtime.training.features import category_key
from framework.runtime.training.reference import Reference

NO_CATEGORY = None  # a one-hot row with no column set: a null or unseen category


@dataclass
class Current:
    frame: pd.DataFrame
    source: str  # what was read, for the report
    notes: list[str] = field(default_factory=list)
    labelled: bool = False  # carries the target column (usable for retraining)
    rows: pd.DataFrame | None = None  # a labelled file's raw rows (its training-data columns), for retraining


def _fail(where: str | None, message: str) -> MlopsError:
    return MlopsError([Problem(Location(where) if where else None, "--current" if where else "monitoring.drift", message)])


# --- the request log ------------------------------------------------------------------
def from_request_log(recipe, state_dir: Path, reference: Reference, window_s: float, now: float | None = None) -> Current:
    folder = Path(state_dir) / "requests" / recipe.registered_model
    files = sorted(folder.glob("*.parquet")) if folder.is_dir() else []
    if not files:
        raise _fail(None, f"no served traffic logged in {folder}: serve the model (`mlops serve {recipe.name}`, "
                          "monitoring.metrics.log_sample_rate > 0) or pass a file with --current")
    import pyarrow.dataset as ds

    since = pd.Timestamp((now or time.time()) - window_s, unit="s", tz="UTC")
    dataset = ds.dataset([str(f) for f in files], format="parquet")
    table = dataset.to_table(filter=ds.field("timestamp") >= since.to_pydatetime())
    logged = table.to_pandas()
    window = f"the last {recipe.monitoring.drift.window}"
    frame = pd.DataFrame(index=logged.index)
    for name in reference.numeric:
        if name not in logged:
            raise _fail(None, f"the request log in {folder} has no column '{name}': it was written for another model signature")
        frame[name] = logged[name].astype("float64")
    for name, categories in reference.schema["categorical"].items():
        if name not in logged:
            raise _fail(None, f"the request log in {folder} has no column '{name}': it was written for another model signature")
        # The logged text is what the client sent; the model encodes any other value as no category.
        known = set(categories)
        frame[name] = [value if value in known else NO_CATEGORY for value in logged[name].astype(str)]
    notes = [f"{len(frame)} served rows of {window} from {len(files)} request-log file(s)"]
    same_version = logged["version"].astype(str) == str(reference.version) if "version" in logged else None
    for name in reference.prediction:
        values = logged[name].astype("float64") if name in logged else pd.Series(np.nan, index=logged.index)
        if same_version is not None:
            values = values.where(same_version)  # other versions' answers say nothing about this model's drift
        frame[name] = values
    if same_version is not None and not same_version.all():
        notes.append(f"prediction drift from the {int(same_version.sum())} rows version {reference.version} answered")
    return Current(frame.reset_index(drop=True), f"request log {folder} ({window})", notes)


# --- a file ---------------------------------------------------------------------------
def read_table(path: Path) -> pd.DataFrame:
    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise _fail(where, f"no such file: {path}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(path)
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise _fail(where, f"cannot read {path.name}: {exc}") from None
    raise _fail(where, f"{path.name}: use a .csv or .parquet file")


def from_file(path: Path, reference: Reference, recipe, state_dir: Path) -> Current:
    where = str(path)
    table = read_table(path)
    features = reference.features
    missing = [c for c in features if c not in table.columns]
    if missing:
        raise _fail(where, f"missing column(s) {', '.join(missing)} the model was trained on")
    known = {*reference.schema["source_columns"], *features, reference.schema["target"], *reference.schema["outputs"]}
    extra = [c for c in table.columns if c not in known]
    if extra:
        raise _fail(where, f"column(s) {', '.join(map(str, extra))} the training data did not have; "
                           "drop them or compare a file laid out like the training data")
    frame = pd.DataFrame(index=table.index)
    for name in reference.numeric:
        frame[name] = _numeric(table[name], name, where)
    for name, categories in reference.schema["categorical"].items():
        frame[name] = _categorical(table[name], name, categories, where)
    notes = [f"{len(frame)} rows from {path}"]
    outputs = reference.schema["outputs"]
    if all(c in table.columns for c in outputs):
        for name in reference.prediction:
            frame[name] = _numeric(table[name], name, where)
        notes.append("predictions from the file's output columns")
    elif len(frame):
        predicted = predict(reference, recipe, state_dir, table)
        for j, name in enumerate(outputs):
            if name in reference.prediction:
                frame[name] = predicted[:, j].astype("float64")
        notes.append(f"predictions of version {reference.version} on these rows")
    target = reference.schema["target"]
    labelled = target in table.columns
    rows = table[[c for c in table.columns if c not in reference.schema["outputs"]]].reset_index(drop=True) if labelled else None
    return Current(frame.reset_index(drop=True), str(path), notes, labelled, rows)


def _numeric(values: pd.Series, name: str, where: str) -> pd.Series:
    if pd.api.types.is_bool_dtype(values):
        return values.astype("float64")
    numbers = pd.to_numeric(values, errors="coerce")
    text = values[numbers.isna() & values.notna()]
    if len(text):
        raise _fail(where, f"column '{name}' was numeric in training but holds text here "
                           f"({len(text)} rows, e.g. {str(text.iloc[0])!r})")
    return numbers.astype("float64")


def _categorical(values: pd.Series, name: str, categories: list[str], where: str) -> pd.Series:
    text = values.map(lambda v: NO_CATEGORY if _is_null(v) else category_key(v))
    present = set(text.dropna())
    numeric_now = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if present and numeric_now and not present & set(categories) and not _numbers(categories):
        raise _fail(where, f"column '{name}' was categorical in training ({', '.join(categories[:4])}) but holds numbers "
                           f"here (e.g. {values.dropna().iloc[0].item()!r})")
    return text


def _numbers(values: list[str]) -> bool:
    try:
        [float(v) for v in values]
    except ValueError:
        return False
    return True


def _is_null(value) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA


def predict(reference: Reference, recipe, state_dir: Path, table: pd.DataFrame) -> np.ndarray:
    """The reference version's outputs [rows, width] on raw rows (encoded as in training)."""
    from framework.contracts.triton import model_config
    from framework.runtime import tracking
    from framework.runtime.registered import model_runner, run_model
    from framework.runtime.serving.registry_source import fetch_version

    config = model_config(recipe)
    uri = tracking.tracking_uri(recipe, state_dir)
    folder = Path(state_dir) / "monitor" / "models" / config.name / str(reference.version)
    path = fetch_version(tracking.client(uri), uri, recipe.registered_model, str(reference.version), config.default_model_filename, folder)
    return run_model(model_runner(path, config), config, reference.pipeline().raw_inputs(table))


__all__ = ["Current", "from_request_log", "from_file", "read_table", "predict"]
