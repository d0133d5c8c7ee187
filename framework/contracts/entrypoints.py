"""The runtime's entrypoints that generated manifests call: `python -m` modules and ASGI
import paths. The targets write them, the runtime's own submitters use them, and a test
checks that each is in the image's wheel."""

TRAINING = "framework.runtime.training"  # the training job (RayJob entrypoint, PyTorchJob, local apply)
FETCH_MODEL = "framework.runtime.serving.fetch_model"  # Triton's init container fills the model repository
MONITOR = "framework.runtime.monitor"  # the drift CronJob
RAG_INDEX = "framework.runtime.rag.index"  # the RAG index job
BATCH = "framework.runtime.batch"  # the batch scoring job
BATCH_LAUNCH = "framework.runtime.batch.launch"  # the CronJob that starts a batch RayJob
SERVE_APP = "framework.runtime.serving.host:app"  # the Ray Serve application of a tabular model
RAG_APP = "framework.runtime.rag.service:app"  # the Ray Serve application of a RAG service
