"""The training job, one module per step: data (data_source reads, data checks, data_report and data_values show, data_target and
data_nulls check what every model needs), splitting,
features (the FeaturePipeline), model (the torch network), trainer and epochs (Ray
Train's TorchTrainer loop), boosting (LightGBM on Ray Train), hpo (Optuna through Ray
Tune), distill (soft targets from a teacher), metrics_eval, export (ONNX or TorchScript
with the raw-column preprocessing, onnx_columns), gates, reference (the drift reference monitor compares with), steps and progress (what the
user sees), and run (the entrypoint: `python -m framework.runtime.training`)."""
