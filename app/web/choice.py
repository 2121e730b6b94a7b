"""What the pages say about choosing a policy checkpoint to deploy: the reward-hacking flags of each
checkpoint (`app.evaluations.flags`, under the project's current policy) and the ratings of the latest
campaign evaluation of its series (`app.evaluations.candidate`), drawn by `app.web.ratings`.

The pages show the latest campaign evaluation by people and, when an AI judge's is newer, that one
too, labelled as an AI judge's. Flags are computed when a page is read, so a later policy or campaign
shows on the next visit."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.evaluations import candidate as candidate_service
from app.evaluations import flags as flags_service
from app.records.models import Record
from app.records.service import effective_policy
from app.runs.models import Run
from app.web import repository
from app.web.ratings import campaign_view, interval, judge_of, rating_of


def _policy(session: Session, project_id: str) -> dict[str, Any]:
    return effective_policy(session.connection(), project_id).spec


def of_run(session: Session, run: Run, found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Sets the flags of each checkpoint in `found` (a run page's checkpoints) and returns the latest
    campaign ratings of every policy checkpoint series the run wrote to."""
    flagged = flags_service.run_flags(session, run.id, _policy(session, run.project_id))
    for checkpoint in found:
        checkpoint["flags"] = flagged.get(checkpoint["id"], [])
    names = dict.fromkeys(c["name"] for c in found if c["kind"] == "policy_checkpoint")
    return candidates(session, run.project_id, list(names), compact=False)


def latest_evaluations(session: Session, project_id: str, series: str) -> list[Record]:
    """The latest campaign evaluation of `series` by people, and the latest of all when it is an AI
    judge's and newer: people's ratings first, so an AI judge's never stands in for them."""
    human = candidate_service.latest_campaign_evaluation(session, project_id, series, human_only=True)
    latest = candidate_service.latest_campaign_evaluation(session, project_id, series)
    return [e for e in (human, latest if latest != human else None) if e is not None]


def candidates(session: Session, project_id: str, series: list[str], *, compact: bool = True) -> list[dict[str, Any]]:
    """Per policy checkpoint series a campaign evaluation rated: the views (candidate, chart and, unless
    compact, the table) of its latest evaluations."""
    return [
        {"series": name, **campaign_view(evaluation, compact=compact)}
        for name in series
        for evaluation in latest_evaluations(session, project_id, name)
    ]


def _campaign_evaluations(session: Session, campaign: Record) -> list[Record]:
    """The evaluations made of a campaign's judgments, newest first."""
    ids = [
        c.id
        for c in session.execute(repository.children_of(campaign.id))
        if c.kind == "evaluation" and c.role == "campaign"
    ]
    return list(session.scalars(repository.records_by_ids(ids))) if ids else []


def of_record(session: Session, record: Record) -> dict[str, Any] | None:
    """A policy checkpoint's flags and rating; an evaluation campaign's or a campaign evaluation's
    ratings; None for any other record."""
    if record.kind == "policy_checkpoint":
        flags = flags_service.checkpoint_flags(session, record, _policy(session, record.project_id))
        evaluations = latest_evaluations(session, record.project_id, record.name)
        return {
            "flags": flags,
            "ratings": [
                {
                    "judge": judge_of(e.derived),
                    "ai_judged": bool(e.derived.get("ai_judged")),
                    "text": interval(rating_of(e.derived, record.id)),
                    "rated": rating_of(e.derived, record.id) is not None,
                    "candidate": (e.derived.get("candidate") or {}).get("model") == record.id,
                }
                for e in evaluations
            ],
            "campaigns": [campaign_view(e, compact=True) for e in evaluations],
        }
    if record.kind == "evaluation" and any(p["role"] == "campaign" for p in record.parents):
        return {"campaigns": [campaign_view(record)]}
    if record.kind == "evaluation_campaign":
        evaluations = sorted(_campaign_evaluations(session, record), key=lambda e: e.id, reverse=True)
        return {"campaigns": [campaign_view(e) for e in evaluations]}
    return None
