"""`mlops batch`: score a table with a registered model version, offline, in bulk.

One code path with serving: the model file itself takes the raw columns
(framework/signature.py) and the rows become its request tensors exactly as a client's
do (`FeaturePipeline.raw_inputs`). inputs.py finds and checks the input files,
predictor.py is the per-batch scorer, ray_engine.py runs it on Ray Data and writes the
partitioned, resumable output.
"""
