"""The deployment candidate of a policy checkpoint series (app.evaluations.candidate)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from pydantic import BaseModel

from app.access import service as access_service
from app.api.deps import PrincipalDep, UowDep
from app.api.typed import typed
from app.evaluations import candidate
from app.evaluations.flags_routes import RatingRead

router = APIRouter(tags=["policy-checkpoints"])
VIEW = frozenset({"viewer"})


class SeriesRatingRead(RatingRead):
    # why a model has no rating (no judgment compares it, ...); null when it has one
    reason: str | None = None


class NextCheckpointRead(BaseModel):
    model: str
    version: str
    step: int | None
    rating: float | None
    low: float | None
    high: float | None


class CandidateBlockRead(BaseModel):
    """The checkpoint rated highest (never the reference), the next-best one, whether their 95% rating
    intervals overlap, and what to do about it."""

    model: str
    name: str
    version: str
    step: int | None
    rating: float
    low: float | None
    high: float | None
    next: NextCheckpointRead | None
    overlaps_next: bool
    advice: str


class CampaignRef(BaseModel):
    id: str
    name: str
    version: str


class SourceEvaluationRead(BaseModel):
    """The campaign evaluation the candidate comes from; `ai_judged`: an AI judge's, not people's."""

    id: str
    name: str
    version: str
    type: str
    ai_judged: bool
    judgments: int
    campaign: CampaignRef


class CandidateRead(BaseModel):
    series: str
    evaluation: SourceEvaluationRead
    # null when the judgments rate no checkpoint (each rating says why)
    candidate: CandidateBlockRead | None
    ratings: list[SeriesRatingRead]


@router.get(
    "/v1/projects/{project}/policy-checkpoints/{name}/candidate",
    response_model=CandidateRead,
    summary="The deployment candidate of a policy checkpoint series",
)
def series_candidate(
    project: str, name: str, uow: UowDep, principal: PrincipalDep, human_only: bool = False
) -> Response:
    """The candidate of series `name`, named by people's newest campaign evaluation (an AI judge's newest
    when people judged none), with the ratings of every model it compared; `human_only` never takes an
    AI judge's. 404 when no campaign evaluation (by people, with `human_only`) covers the series."""
    access = access_service.project_access(uow.session, principal, project, VIEW)
    answer = candidate.candidate_of(uow.session, access.project.id, name, human_only=human_only)
    return typed(CandidateRead, answer)
