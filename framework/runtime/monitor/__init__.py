"""Drift monitoring (`mlops monitor`, the drift CronJob) against the reference that
training/reference.py records at apply (what a version was trained on): current.py reads served traffic or a file, drift.py scores
them (PSI and evidently), report.py writes the report and gauges, actions.py retrains,
run.py ties them together. Nothing heavy is imported here: the CLI stays fast."""
