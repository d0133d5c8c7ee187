"""The tracking backends' secrets: connects generate (the pods that run tracked jobs get
these environment variables from Kubernetes Secrets, `secretKeyRef`) and the runtime
(runtime/wandb_mirror.py logs in to W&B with WANDB_API_KEY). The recipe holds only the
reference (`tracking.wandb.api_key`: a Secret's name and key), never the key.
"""

from __future__ import annotations

WANDB_API_KEY_ENV = "WANDB_API_KEY"  # where wandb (and the mirror) read the API key


def tracking_secrets(recipe) -> dict:
    """{environment variable: SecretRef} the tracked jobs need: the W&B API key when
    runs are mirrored to W&B online; nothing otherwise (offline runs never log in)."""
    wandb = recipe.tracking.wandb
    if "wandb" in recipe.tracking.backends and wandb is not None and wandb.mode == "online":
        return {WANDB_API_KEY_ENV: wandb.api_key}
    return {}


__all__ = ["WANDB_API_KEY_ENV", "tracking_secrets"]
