"""The training job, one module per step:
- data: data_source reads `data.source`, data checks `data.expectations`, data_target and
  data_nulls check what every model needs, data_report and data_values show the results;
- splitting; features (the FeaturePipeline); model (the torch network);
- trainer and epochs (Ray Train's TorchTrainer loop), boosting (LightGBM on Ray Train),
  hpo (Optuna through Ray Tune), distill (soft targets from a teacher);
- metrics_eval, export (ONNX or TorchScript with the raw-column preprocessing,
  onnx_columns), gates, reference (the drift reference `mlops monitor` compares with);
- steps and progress (what the user sees), and run, the entrypoint
  (`python -m framework.runtime.training`)."""
