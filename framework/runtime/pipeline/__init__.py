"""The CI pipeline's own commands on a registered version: evaluate (re-score it on the
validation split or evaluation.dataset), gate (check its recorded metrics, promote it)
and smoke (check a deployed endpoint against the registered model)."""
