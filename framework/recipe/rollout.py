"""`rollout`: how a candidate replaces the champion; `strategy` selects the variant."""


from typing import Annotated, Literal, Union

from pydantic import Field

from framework.recipe.base import Section
from framework.recipe.types import Duration, Fraction, Percent


class Analysis(Section):
    """Decides promote or roll back at each step, from the candidate's live metrics."""

    max_error_rate: Fraction = Field(default=0.01, description="Largest allowed share of failed requests.")
    max_latency_p99_ms: Annotated[float, Field(gt=0)] = Field(default=250.0, description="Largest allowed p99 latency, ms.")
    min_requests: Annotated[int, Field(ge=1)] = Field(
        default=100, description="Requests the candidate must have served before a step is judged."
    )


class HeaderOverride(Section):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9-]+$")] = Field(
        default="x-mlops-candidate", description="Request header that routes to the candidate."
    )
    value: str = Field(default="true", description="Header value that selects the candidate.")


class _Rollout(Section):
    analysis: Analysis = Field(default_factory=Analysis, description="Metric analysis deciding promotion.")


class DirectRollout(_Rollout):
    strategy: Literal["direct"] = Field(description="Replace the champion at once when the gates pass.")


class CanaryRollout(_Rollout):
    strategy: Literal["canary"] = Field(description="Shift traffic to the candidate step by step.")
    steps: list[Annotated[int, Field(ge=1, le=100)]] = Field(
        default_factory=lambda: [10, 25, 50, 100],
        min_length=1,
        description="Candidate traffic percent of each step; strictly rising, ending at 100.",
    )
    interval: Duration = Field(default="5m", description="Time each step runs before analysis.")
    header: HeaderOverride = Field(default_factory=HeaderOverride, description="Header that forces the candidate.")


class ShadowRollout(_Rollout):
    strategy: Literal["shadow"] = Field(description="Mirror traffic to the candidate; only the champion answers.")
    mirror_percent: Annotated[float, Field(gt=0, le=100)] = Field(
        default=100.0, description="Percent of requests mirrored to the candidate."
    )
    duration: Duration = Field(default="30m", description="How long the shadow runs before the decision.")
    min_agreement: Fraction = Field(
        default=0.95, description="Smallest share of mirrored requests where both models agree."
    )


class BanditRollout(_Rollout):
    strategy: Literal["bandit"] = Field(description="Allocate traffic by Thompson sampling on a reward.")
    algorithm: Literal["thompson"] = Field(default="thompson", description="Bandit algorithm.")
    reward: Literal["success", "feedback"] = Field(
        default="success", description="Reward of a request: served without error, or explicit feedback."
    )
    min_percent: Percent = Field(default=5.0, description="Traffic each arm keeps for exploration.")
    duration: Duration = Field(default="1h", description="How long the bandit runs before the decision.")
    promote_probability: Annotated[float, Field(gt=0.5, lt=1)] = Field(
        default=0.9,
        description="Posterior P(candidate beats champion) needed to promote; at or below 1 minus it, roll back; "
        "in between, inconclusive: the champion stays.",
    )


class BlueGreenRollout(_Rollout):
    strategy: Literal["blue_green"] = Field(description="Start the candidate beside the champion, then switch all traffic.")
    preview_duration: Duration = Field(default="10m", description="Time the candidate is checked on the preview route.")
    auto_promote: bool = Field(default=True, description="Switch without a manual promote when analysis passes.")
    header: HeaderOverride = Field(default_factory=HeaderOverride, description="Header that routes to the preview.")


Rollout = Annotated[
    Union[DirectRollout, CanaryRollout, ShadowRollout, BanditRollout, BlueGreenRollout],
    Field(discriminator="strategy"),
]
