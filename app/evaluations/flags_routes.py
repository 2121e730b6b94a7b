"""A policy run's checkpoint series with its reward-hacking alarms (app.evaluations.flags)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict

from app.access import service as access_service
from app.api.deps import PrincipalDep, UowDep
from app.api.typed import typed
from app.evaluations import flags
from app.records.service import effective_policy
from app.runs import service as runs_service

router = APIRouter(prefix="/v1/projects/{project}/runs", tags=["runs"])
VIEW = frozenset({"viewer"})


class FlagValues(BaseModel):
    """The figures a flag compared; which ones depends on the flag."""

    model_config = ConfigDict(extra="forbid")

    first: float | None = None
    last: float | None = None
    gain: float | None = None
    min_gain: float | None = None
    kl_to_reference: float | None = None
    kl_max: float | None = None
    length_reward_correlation: float | None = None
    length_reward_corr_max: float | None = None
    reward_gain: float | None = None
    adversarial_mean_reward: float | None = None
    drop: float | None = None
    adversarial_drop_max: float | None = None
    rating: float | None = None
    earlier_rating: float | None = None
    earlier_step: int | None = None
    earlier_version: str | None = None


class FlagRead(BaseModel):
    flag: str
    detail: str
    values: FlagValues


class CheckpointFiguresRead(BaseModel):
    record: str
    version: str
    step: int | None
    mean_reward: float | None
    kl_to_reference: float | None
    mean_completion_length: float | None
    length_reward_correlation: float | None
    adversarial_mean_reward: float | None
    flags: list[FlagRead]


class VersusReferenceRead(BaseModel):
    wins: int | float
    losses: int | float
    ties: int | float
    n: int
    win_rate: float | None
    low: float | None
    high: float | None


class RatingRead(BaseModel):
    model: str
    name: str
    version: str
    step: int | None
    role: str
    rating: float | None
    low: float | None
    high: float | None
    vs_reference: VersusReferenceRead | None


class CampaignRatingsRead(BaseModel):
    evaluation: str
    name: str
    version: str
    type: str
    judgments: int | None
    ratings: list[RatingRead]


class RunCheckpointsRead(BaseModel):
    run: str
    series: str
    checkpoints: list[CheckpointFiguresRead]
    ratings: CampaignRatingsRead | None


@router.get("/{run_id}/checkpoints", response_model=RunCheckpointsRead)
def run_checkpoints(project: str, run_id: str, uow: UowDep, principal: PrincipalDep) -> Response:
    """The policy checkpoints the run registered, in step order, each with the figures it measured and the
    reward-hacking flags they raise under the project's policy; with the latest campaign ratings of the
    series (`ratings.type` says whether humans or an AI judge made them), or null."""
    access = access_service.project_access(uow.session, principal, project, VIEW)
    run = runs_service.get_run(uow.session, access.project.id, run_id)
    policy = effective_policy(uow.session.connection(), access.project.id)
    return typed(RunCheckpointsRead, flags.run_report(uow.session, run, policy.spec))
