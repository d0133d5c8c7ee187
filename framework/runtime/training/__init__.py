"""The training job, one module per step: data (read, check, report nulls), splitting,
features (the FeaturePipeline), model (the torch network), trainer and epochs (Ray
Train's TorchTrainer loop), boosting (LightGBM on Ray Train), hpo (Optuna through Ray
Tune), distill (soft targets from a teacher), metrics_eval, export (ONNX or TorchScript
with the raw-column preprocessing, onnx_columns), gates, steps and progress (what the
user sees), and run (the entrypoint: `python -m framework.runtime.training`)."""
