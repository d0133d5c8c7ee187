"""`mlops batch`: score a table with a registered model version, offline, in bulk.

One code path with serving: the model file itself takes the raw columns
(framework/signature.py) and the rows become its request tensors exactly as a client's
do (`FeaturePipeline.raw_inputs`). inputs.py finds and checks the input files,
predictor.py is the per-batch scorer both engines run, ray_engine.py runs it on Ray Data
(the default) and spark_engine.py on Spark (`--engine spark`, an optional extra); each
engine only hands over the scored rows of one input file at a time, and parts.py writes
the partitioned, resumable output (parts, `_run.json`, `_manifest.json`) for both.
run.py picks the model version, checks the inputs and runs the engine.
"""
