"""The runtime's entrypoints that generated manifests call: connects generate (the
targets write these `python -m` modules and ASGI import paths, and the exit codes and
environment their Jobs react to, into the manifests) and the runtime (which implements
them, and whose own submitters use them). A test checks that each is in the image's wheel."""

TRAINING = "framework.runtime.training"  # the training job (RayJob entrypoint, PyTorchJob, local apply)
FETCH_MODEL = "framework.runtime.serving.fetch_model"  # Triton's init container fills the model repository
MONITOR = "framework.runtime.monitor"  # the drift CronJob
RAG_INDEX = "framework.runtime.rag.index"  # the RAG index job
BATCH = "framework.runtime.batch"  # the batch scoring job
BATCH_LAUNCH = "framework.runtime.batch.launch"  # the CronJob that starts a batch RayJob
SERVE_APP = "framework.runtime.serving.ray_host:app"  # the Ray Serve application of a tabular model
RAG_APP = "framework.runtime.rag.ray_host:app"  # the Ray Serve application of a RAG service

# What the generated Jobs' podFailurePolicy reacts to: fail the Job at once, no retry.
DRIFT_EXIT_CODE = 3  # MONITOR: drift found (a decision, not a failure to retry)
BATCH_LAUNCH_FAILED_EXIT_CODE = 3  # BATCH_LAUNCH: the RayJob it started failed
BATCH_RUN_ENV = "MLOPS_BATCH_RUN"  # BATCH_LAUNCH: the Job's uid, which the launcher labels its RayJob with
