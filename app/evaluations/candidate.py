"""The deployment candidate of a policy checkpoint series: what the newest campaign evaluation covering
the series says (its ratings and the checkpoint rated highest, computed when it was registered).

A campaign evaluation links every model it compared as a `compared` parent, so the evaluations of a
series are the children of its checkpoints by that role: one seek of the edge index per checkpoint,
with no JSON to read in SQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from app.core.errors import NotFound
from app.records.models import Record, RecordEdge

AI_TYPE = "ai_preference"


def series_evaluations(project_id: str, series: str) -> Select[Record]:
    """Campaign evaluations that compared a checkpoint of policy_checkpoint series `series`, newest
    first (record ids are UUIDv7: time-ordered)."""
    checkpoints = select(Record.id).where(
        Record.project_id == project_id, Record.kind == "policy_checkpoint", Record.name == series
    )
    children = select(RecordEdge.child_id).where(RecordEdge.parent_id.in_(checkpoints), RecordEdge.role == "compared")
    return (
        select(Record)
        .where(Record.id.in_(children), Record.kind == "evaluation", Record.project_id == project_id)
        .order_by(Record.id.desc())
    )


def latest_campaign_evaluation(
    session: Session, project_id: str, series: str, *, human_only: bool = False
) -> Record | None:
    """The newest campaign evaluation of `series`; with `human_only`, the newest made by people (an AI
    judge's `ai_preference` evaluation is never human evidence). None when there is none."""
    for evaluation in session.scalars(series_evaluations(project_id, series)):
        if not (human_only and evaluation.spec["type"] == AI_TYPE):
            return evaluation
    return None


def deciding_evaluation(session: Session, project_id: str, series: str, *, human_only: bool = False) -> Record | None:
    """The campaign evaluation that names the series' candidate: people's newest when people judged the
    series at all (the method deploys what human evaluators rate highest), else an AI judge's newest;
    with `human_only`, people's or None."""
    people = latest_campaign_evaluation(session, project_id, series, human_only=True)
    if people is not None or human_only:
        return people
    return latest_campaign_evaluation(session, project_id, series)


def candidate_of(session: Session, project_id: str, series: str, *, human_only: bool = False) -> dict[str, Any]:
    """The series' candidate as its deciding campaign evaluation derived it, with that evaluation and the
    ratings of every model it compared; `NotFound` when no campaign evaluation covers the series."""
    evaluation = deciding_evaluation(session, project_id, series, human_only=human_only)
    if evaluation is None:
        by = "people" if human_only else "anyone"
        raise NotFound(f"no campaign evaluation by {by} covers policy_checkpoint series {series!r}")
    derived = evaluation.derived
    return {
        "series": series,
        "evaluation": {
            "id": evaluation.id,
            "name": evaluation.name,
            "version": evaluation.version,
            "type": derived["type"],
            "ai_judged": derived["ai_judged"],
            "judgments": derived["judgments"],
            "campaign": derived["campaign"],
        },
        "candidate": derived["candidate"],
        "ratings": derived["ratings"],
    }
