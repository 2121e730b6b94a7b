"""Project governance policy: thresholds and gates every later decision cites by version.

A project with no policy record uses these defaults, recorded as policy version 0 (API.md)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.core.errors import ValidationFailed
from app.kinds.base import KindContext, KindDefinition

EvaluationType = Literal[
    "human_preference",
    "human_rating",
    "reward_score",
    "adversarial",
    "length_reward_correlation",
    "kl",
    # pairwise judgments by a `judge` run: the same figures as human_preference, never human evidence
    "ai_preference",
]
EVALUATION_TYPES: tuple[str, ...] = get_args(EvaluationType)

Share = Field(ge=0.0, le=1.0)


class PromptMix(BaseModel):
    model_config = ConfigDict(extra="forbid")

    usage: tuple[float, float] = (0.60, 0.70)
    synthetic: tuple[float, float] = (0.20, 0.25)
    edge: tuple[float, float] = (0.05, 0.15)


class PolicySpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kappa_target: float = Field(0.6, ge=-1.0, le=1.0)
    kappa_floor: float = Field(0.4, ge=-1.0, le=1.0)
    gold_share_min: float = Field(0.05, ge=0.0, le=1.0)
    max_session_minutes: float = Field(90, gt=0)
    validation_share: tuple[float, float] = (0.10, 0.15)
    high_disagreement_band: tuple[float, float] = (0.4, 0.6)
    prompt_mix: PromptMix = PromptMix()
    length_reward_corr_max: float = Field(0.3, ge=0.0, le=1.0)
    deployment_requires: list[str] = ["human_preference", "adversarial"]
    # evidence rules (evaluation_evidence_insufficient): judgments a human evaluation needs at least
    human_judgments_min: int = Field(50, ge=1)
    # reward-hacking alarms, per checkpoint of a policy run (app.evaluations.flags)
    kl_max: float = Field(10.0, gt=0.0)
    reward_flat_min_gain: float = Field(0.0, ge=0.0)
    adversarial_drop_max: float = Field(0.5, ge=0.0)
    # AI-assisted annotation: the share of AI-labelled items sampled for human review, and the agreement
    # of the reviewed items with the AI labels below which a dataset build refuses them
    ai_review_share: float = Field(0.1, gt=0.0, le=1.0)
    ai_review_agreement_min: float = Field(0.7, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _ordered(self) -> PolicySpec:
        if self.kappa_floor > self.kappa_target:
            raise ValueError("kappa_floor must not exceed kappa_target")
        ranges: dict[str, tuple[float, float]] = {
            "validation_share": self.validation_share,
            "high_disagreement_band": self.high_disagreement_band,
            "prompt_mix.usage": self.prompt_mix.usage,
            "prompt_mix.synthetic": self.prompt_mix.synthetic,
            "prompt_mix.edge": self.prompt_mix.edge,
        }
        for name, (low, high) in ranges.items():
            if not 0.0 <= low <= high <= 1.0:
                raise ValueError(f"{name} must be [low, high] with 0 <= low <= high <= 1")
        unknown = sorted(set(self.deployment_requires) - set(EVALUATION_TYPES))
        if unknown:
            raise ValueError(f"deployment_requires names unknown evaluation types {unknown}")
        return self


DEFAULT_POLICY: dict[str, Any] = PolicySpec().model_dump(mode="json")


class PolicyKind(KindDefinition):
    name = "policy"
    collection = "policies"
    rank = 10
    label = "policy"
    waivable = True
    package_fields: ClassVar[tuple[str, ...]] = ()
    traces_to_criteria = False
    is_model = False
    trained = False
    built_by_server = False
    version_scheme = "integer"
    write_roles: ClassVar[frozenset[str]] = frozenset({"admin"})
    spec_model = PolicySpec
    default_name = "default"

    def check(self, ctx: KindContext) -> None:
        # One policy per project: every decision cites "the" policy version, so a second series would
        # make that citation ambiguous.
        if ctx.name != "default":
            raise ValidationFailed(
                "a project has one policy, named 'default'; register a new version of it instead",
                errors=[{"loc": ["body", "name"], "msg": "must be 'default'"}],
            )
