"""Local rollouts of a candidate model version against the champion (issue 5).

* `routers`: the serving app's Router implementations, one per `rollout.strategy`
  (direct, canary, shadow, bandit, blue_green), each keeping per-version counters.
* `analysis`: a step's verdict from the candidate's counters and `rollout.analysis`.
* `traffic`: synthetic KServe v2 infer requests from validation rows.
* `controller`: walks the strategy, then promotes (alias champion) or rolls back
  (alias rejected), recording it in `.mlops/rollouts/<recipe>/<env>.json` (`state`).
* `record`: that record's model (`RolloutRecord`, schema_version 1), its one builder,
  its JSON and its schema (schemas/runtime/rollout-record.schema.json).

Nothing here imports mlflow, numpy-heavy or serving modules at package import.
"""
