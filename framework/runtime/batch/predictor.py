"""The per-batch scorer both engines run: a batch of raw rows in (pandas, or the pyarrow
batch an engine read), the model's answers out, with the id columns passed through.

The rows become the model's request tensors through FeaturePipeline.raw_inputs, the
very function clients, the rollout's traffic and `mlops evaluate` use, and the model
file (which carries its own preprocessing) answers them on ONNX Runtime: the same
predictions as the serving app, by construction.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


class Predictor:
    """Built once per Ray Data actor (or Spark task); called once per batch."""

    def __init__(self, model: bytes | str, pipeline: dict[str, Any], passed: list[str]):
        """`model`: the ONNX file's bytes (what Ray ships to actors on any node) or its path."""
        import onnxruntime as ort

        from framework.runtime.training.features import FeaturePipeline

        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = 1  # one actor, one CPU: parallelism comes from the actors
        options.inter_op_num_threads = 1
        source = model if isinstance(model, bytes) else str(Path(model))
        self.session = ort.InferenceSession(source, sess_options=options, providers=["CPUExecutionProvider"])
        self.outputs = [o.name for o in self.session.get_outputs()]
        self.pipeline = FeaturePipeline.from_dict(pipeline)
        self.passed = list(passed)

    def __call__(self, batch):
        """A pandas DataFrame in, a DataFrame out; or a pyarrow Table/RecordBatch in (what
        both engines pass: the raw rows as read), a pyarrow Table out, the id columns passed
        through as they are without a round trip through Python objects."""
        if isinstance(batch, pd.DataFrame):
            answers = self._answers(batch, len(batch))
            return pd.DataFrame({**{name: batch[name].to_numpy() for name in self.passed}, **answers})
        import pyarrow as pa

        answers = self._answers(batch.select(list(self.pipeline.features)).to_pandas(), batch.num_rows)
        return pa.table({**{name: batch.column(name) for name in self.passed},
                         **{name: pa.array(values) for name, values in answers.items()}})

    def _answers(self, frame: pd.DataFrame, rows: int) -> dict[str, np.ndarray]:
        """{output column: values}: text for the label, float32 per class probability."""
        out = {}
        for name, values in zip(self.outputs, self.session.run(self.outputs, self.pipeline.raw_inputs(frame))):
            values = values.reshape(rows, -1)
            if values.dtype == object:  # the label: text
                out[name] = values[:, 0].astype(str)
            elif values.shape[1] == 1:
                out[name] = values[:, 0].astype(np.float32)
            else:
                for j in range(values.shape[1]):
                    out[f"{name}_{j}"] = values[:, j].astype(np.float32)
        return out
