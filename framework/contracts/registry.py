"""The MLflow registry's aliases of a recipe's registered model: connects training (which
registers a version and points `candidate`, and on direct rollouts `champion`, at it)
and serving (the serving app, the Triton pod's init container, batch scoring and the
drift monitor load the version an alias names; a rollout moves them).

* `champion`: the version that answers requests.
* `candidate`: the newest version that passed its gates, rolled out against the champion.
* `rejected`: a candidate a rollout rolled back (its `candidate` alias stays, so a person
  may still promote it).
"""

from __future__ import annotations

ALIAS_CHAMPION = "champion"
ALIAS_CANDIDATE = "candidate"
ALIAS_REJECTED = "rejected"

# The versions a server serving from the registry loads (the serving app without a
# model repository on disk, a Ray Serve replica): the champion and the candidate.
SERVED_ALIASES = (ALIAS_CHAMPION, ALIAS_CANDIDATE)
# What a rollout reads: the served versions and the candidate it rejected.
ROLLOUT_ALIASES = (*SERVED_ALIASES, ALIAS_REJECTED)

__all__ = ["ALIAS_CHAMPION", "ALIAS_CANDIDATE", "ALIAS_REJECTED", "SERVED_ALIASES", "ROLLOUT_ALIASES"]
