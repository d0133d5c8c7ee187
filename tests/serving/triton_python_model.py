"""A Triton python-backend model that runs the ONNX file of its version with ONNX Runtime.

tests/serving/tritonserver.py copies it as `model.py` beside `model.onnx` in each version
directory of a model repository (config.pbtxt then says `backend: "python"` and
`default_model_filename: "model.py"`): the real Triton serves our exported model when its
onnxruntime backend is not shipped (nvidia-pytriton's build carries only the python one).
Every request of a dynamic batch runs in one ONNX Runtime call, with the serving app's
session options (1 intra-op thread, no spinning).

Triton runs this file in its python backend stub, an embedded interpreter in isolated mode
that ignores PYTHONPATH: numpy and onnxruntime come from the site-packages directories that
MLOPS_TRITON_SITE_PACKAGES names (the triton venv's).
"""

import json
import os
import site

for _folder in os.environ.get("MLOPS_TRITON_SITE_PACKAGES", "").split(os.pathsep):
    if _folder:
        site.addsitedir(_folder)

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import triton_python_backend_utils as pb_utils  # noqa: E402

ONNX_FILE = "model.onnx"


def _text(array: np.ndarray) -> np.ndarray:
    """A BYTES tensor (numpy objects, bytes) as the str tensor ONNX Runtime compares."""
    flat = [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in array.reshape(-1)]
    return np.array(flat, dtype=object).reshape(array.shape)


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        path = os.path.join(args["model_repository"], args["model_version"], ONNX_FILE)
        self.session = ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])
        self.inputs = [(t["name"], t["data_type"] == "TYPE_STRING") for t in config["input"]]
        self.outputs = [t["name"] for t in config["output"]]

    def execute(self, requests):
        parts: dict[str, list[np.ndarray]] = {name: [] for name, _ in self.inputs}
        sizes = []
        for request in requests:
            rows = 0
            for name, text in self.inputs:
                array = pb_utils.get_input_tensor_by_name(request, name).as_numpy()
                parts[name].append(_text(array) if text else array)
                rows = len(array)
            sizes.append(rows)
        feed = {name: arrays[0] if len(arrays) == 1 else np.concatenate(arrays) for name, arrays in parts.items()}
        results = self.session.run(self.outputs, feed)
        responses, start = [], 0
        for rows in sizes:
            tensors = [pb_utils.Tensor(name, np.ascontiguousarray(result[start:start + rows]))
                       for name, result in zip(self.outputs, results)]
            responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
            start += rows
        return responses
