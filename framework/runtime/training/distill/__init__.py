"""Knowledge distillation (`training.distillation`): a teacher's logits and the loss.

Two halves, used by the training job:

1. `teacher_logits(uri, x, tracking_uri=...)` loads the teacher named by an MLflow
   model URI and returns its logits for the student's feature matrix, once, on the
   driver, before training (the rows never change between epochs, so the teacher
   runs once instead of once per batch per epoch):
     - `models:/<name>@<alias>` and `models:/<name>/<version>` are resolved through the
       registry of `tracking_uri` (an MlflowClient bound to it, as in tracking.py);
     - `runs:/<run id>/<path>` and any artifact URI (file://, s3://, ...) are
       downloaded with `mlflow.artifacts.download_artifacts`.
   What was downloaded decides how it runs:
     - a directory with an `MLmodel` file: an MLflow flavour model, run through
       `mlflow.pyfunc` (pytorch, onnx, sklearn with pyfunc_predict_fn="predict_proba", ...);
     - a directory with `model.onnx` run on ONNX Runtime, or `model.pt` (TorchScript):
       what this framework registers takes the raw columns (framework/signature.py) and
       runs on the student's rows as request tensors (`raw=`); an older or foreign graph
       with one [rows, features] input runs on the student's encoded matrix;
       `feature_pipeline.json` beside it, which the framework always logs, gives the
       teacher's input columns and classes;
     - a single `.onnx` or `.pt` file: the same without the pipeline.
   Compatibility is checked before any training: the teacher's input columns (when it
   carries feature_pipeline.json and the caller passes `expected_features`) must be the
   student's, the teacher's input width must be x's, its output width the student's
   number of classes. Equal column or class sets in another order are not an error:
   x's columns are reordered to the teacher's layout, the teacher's output columns to
   the student's class order. Every failure is an MlopsError on the key
   `training.distillation.teacher` naming the URI and what to do.

2. `distillation_loss(...)` is the loss of Hinton et al. exactly as the seed writes it:
       soft_targets = softmax(teacher_logits / T)
       soft_loss = kl_div(log_softmax(student_logits / T), soft_targets, "batchmean") * T**2
       hard_loss = cross_entropy(student_logits, labels)
       loss = alpha * soft_loss + (1 - alpha) * hard_loss
   and `Distiller` is the per-batch helper a training loop holds (`from_recipe`).

Regression: distillation needs a classifier. Temperature-softened targets only exist
for class distributions; an MSE-to-the-teacher variant would silently ignore
`temperature` and is a different method, so a regression recipe (or a regression
teacher) with `training.distillation` is refused with an error saying so.

Teacher outputs are turned into logits as follows (the loss only ever sees logits):
  - a framework model's `probabilities` (ONNX, TorchScript): log(clip(p, 1e-7));
  - an MLflow flavour model's output, 2-D [n, classes]: probabilities when every value
    is in [0, 1] and every row sums to 1 (within 1e-3), then log(clip(p, 1e-7));
    anything else (negative values, rows not summing to 1) is taken as logits as is.
    A 1-D output (class labels, e.g. sklearn's `predict`) is refused.

The package: `teacher` (teacher_logits: run the teacher, check it fits), `loading` (find,
download and load it: ONNX, TorchScript or an MLflow flavour), `loss` (distillation_loss,
Distiller). torch, mlflow and onnxruntime are imported inside functions: importing it
costs only numpy.
"""
from framework.runtime.training.distill.loading import KEY
from framework.runtime.training.distill.loss import Distiller, distillation_loss
from framework.runtime.training.distill.teacher import recipe_teacher_logits, teacher_logits

__all__ = ["teacher_logits", "recipe_teacher_logits", "distillation_loss", "Distiller", "KEY"]
