"""Sampled request logging: never blocks or fails a request; a folder pandas reads."""

from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd
import pytest

from framework import api
from framework.runtime.serving.host import build_app
from framework.runtime.serving.request_log import RequestLog
from tests.conftest import REPO


def arrays(rows: int, value: float = 1.0, category: str = "one_year"):
    """A request of the raw-column contract: a number, a category (text), a number with a
    null; and its answer, probabilities and labels."""
    inputs = {
        "a": np.full((rows, 1), value, np.float32),
        "b": np.full((rows, 1), category, dtype=object),
        "c": np.full((rows, 1), np.nan, np.float32),
    }
    outputs = {"probabilities": np.full((rows, 2), 0.5, np.float32), "label": np.full((rows, 1), "yes", dtype=object)}
    return inputs, outputs


def test_rows_columns_and_versions(tmp_path):
    log = RequestLog(tmp_path, 1.0)
    log.describe("churn", ("a", "b", "c"), [("probabilities", 2), ("label", 1)])
    log.add("churn", "1", 1_700_000_000.25, 0.002, *arrays(2, 1.0))
    log.add("churn", "2", 1_700_000_001.5, 0.004, *arrays(1, 3.0, ""))
    log.close()
    frame = pd.read_parquet(tmp_path / "churn")
    assert list(frame.columns) == [
        "timestamp", "model", "version", "latency_ms", "a", "b", "c", "probabilities_0", "probabilities_1", "label",
    ]
    assert frame["version"].tolist() == ["1", "1", "2"]
    assert frame["latency_ms"].tolist() == pytest.approx([2.0, 2.0, 4.0])
    assert frame["a"].tolist() == [1.0, 1.0, 3.0]
    assert frame["b"].tolist() == ["one_year", "one_year", ""]  # a category stays text beside the numbers
    assert frame["c"].isna().all() and frame["c"].dtype == np.float32  # nulls as sent
    assert frame["label"].tolist() == ["yes"] * 3
    assert frame["timestamp"].iloc[2] == pd.Timestamp("2023-11-14 22:13:21.5", tz="UTC")


def test_sampling_rate():
    assert not any(RequestLog("x", 0.0).sample() for _ in range(1000))
    assert all(RequestLog("x", 1.0).sample() for _ in range(1000))
    hits = sum(RequestLog("x", 0.1).sample() for _ in range(20000))
    assert 1500 < hits < 2500
    with pytest.raises(ValueError, match=r"sample_rate must be in \[0, 1\], got 1.5"):
        RequestLog("x", 1.5)


def test_a_full_buffer_drops_samples_instead_of_growing(tmp_path):
    log = RequestLog(tmp_path, 1.0, max_rows=5)
    for _ in range(4):
        log.add("churn", "1", 0.0, 0.001, *arrays(2))
    assert log.dropped == 2
    log.flush()
    assert len(pd.read_parquet(tmp_path / "churn")) == 4


def test_a_folder_that_cannot_be_written_warns_once_and_serving_goes_on(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    log = RequestLog(blocker, 1.0)
    with caplog.at_level(logging.WARNING, logger="mlops.serve"):
        for _ in range(3):
            log.add("churn", "1", 0.0, 0.001, *arrays(1))
            log.flush()
    assert [r.message.split(":")[0] for r in caplog.records] == [f"request log for churn not written to {blocker / 'churn'}"]


def test_the_background_thread_flushes_on_its_own(tmp_path):
    log = RequestLog(tmp_path, 1.0, flush_seconds=0.05)
    log.start()
    try:
        log.add("churn", "1", 0.0, 0.001, *arrays(3))
        for _ in range(200):
            if list(tmp_path.glob("churn/*.parquet")):
                break
            time.sleep(0.01)
        assert len(pd.read_parquet(tmp_path / "churn")) == 3
    finally:
        log.close()


def test_the_sample_rate_comes_from_the_recipe(tmp_path, model_repo):
    recipe = api.load_recipe("churn", overrides=["monitoring.metrics.log_sample_rate=0.25"], project=REPO).recipe
    app = build_app(recipe, model_repo, tmp_path)
    assert app.request_log.sample_rate == 0.25 and app.request_log.folder == tmp_path / "requests"
    off = api.load_recipe("churn", overrides=["monitoring.metrics.log_sample_rate=0"], project=REPO).recipe
    assert build_app(off, model_repo, tmp_path).request_log is None
