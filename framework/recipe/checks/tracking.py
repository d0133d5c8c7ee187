"""Rules mainly about `tracking`: W&B settings that something reads, an API key exactly
when a W&B run logs in (online), and offline runs only where their files stay (dev: the
environments past it train in jobs on the cluster, as data.py's rules assume too).
"""

from __future__ import annotations

from collections.abc import Iterator

from framework.recipe.checks.base import Violation, check
from framework.recipe.recipe import Recipe


@check
def wandb_settings_need_the_backend(r: Recipe) -> Iterator[Violation]:
    if r.tracking.wandb is not None and "wandb" not in r.tracking.backends:
        yield Violation(
            ("tracking.wandb", "tracking.backends"),
            "tracking.wandb is set but tracking.backends does not list wandb, so nothing reads it: "
            "add wandb to tracking.backends, or drop tracking.wandb",
        )


def _mirrored(r: Recipe):
    """tracking.wandb when runs are mirrored to W&B, else None."""
    return r.tracking.wandb if "wandb" in r.tracking.backends else None


@check
def wandb_key_exactly_online(r: Recipe) -> Iterator[Violation]:
    wandb = _mirrored(r)
    if wandb is None:
        return
    if wandb.mode == "online" and wandb.api_key is None:
        yield Violation(
            ("tracking.wandb.mode", "tracking.wandb.api_key"),
            "tracking.wandb.mode online logs in with tracking.wandb.api_key, which is not set: reference the "
            "Kubernetes Secret holding the W&B API key ({name, key})",
        )
    elif wandb.mode == "offline" and wandb.api_key is not None:
        yield Violation(
            ("tracking.wandb.api_key", "tracking.wandb.mode"),
            "tracking.wandb.api_key is used only with tracking.wandb.mode online (an offline run never logs in): "
            "drop it, or set mode: online",
        )


@check
def wandb_offline_only_in_dev(r: Recipe) -> Iterator[Violation]:
    wandb = _mirrored(r)
    if wandb is None or wandb.mode != "offline" or r.environment == "dev":
        return
    # Located where offline was chosen: the mode when a file says it, else the backend that turned W&B on.
    keys = ("tracking.wandb.mode", "tracking.backends")
    keys = keys if "mode" in wandb.model_fields_set else keys[::-1]
    yield Violation(
        (*keys, "environment"),
        f"tracking.wandb.mode offline writes the W&B runs that tracking.backends asks for into the job's pod on the "
        f"cluster in environment {r.environment}, whose files go with the job: use mode online (with "
        "tracking.wandb.api_key) there",
    )
