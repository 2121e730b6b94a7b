"""Append-only decisions on records: deployment approval and rejection, and revocation.

Approval enforces the evidence the policy demands (`evaluation_evidence_missing`), separation of duties
(`separation_of_duties`: the approver registered neither the policy checkpoint nor its run) and that
nothing upstream is revoked (`quarantined`); the first and last can be waived, the second never."""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.errors import (
    EvaluationEvidenceMissing,
    ImmutableRecord,
    Quarantined,
    SeparationOfDuties,
    ValidationFailed,
)
from app.core.uow import UnitOfWork
from app.kinds.waiver import waivers_covering
from app.lineage.service import load_graph
from app.records.models import Record, RecordEvent
from app.records.service import effective_policy

Decision = Literal["approved", "rejected"]


def events_of(session: Session, record_id: str) -> list[RecordEvent]:
    return list(session.scalars(select(RecordEvent).where(RecordEvent.record_id == record_id).order_by(RecordEvent.id)))


def event_to_dict(event: RecordEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "record_id": event.record_id,
        "type": event.type,
        "data": event.data,
        "actor": event.actor,
        "created_at": event.created_at.isoformat().replace("+00:00", "Z"),
    }


def _parent(session: Session, record: Record, role: str) -> Record:
    parent_id = next(p["id"] for p in record.parents if p["role"] == role)
    parent = session.get(Record, parent_id)
    assert parent is not None  # edges reference existing records (foreign keys)
    return parent


def trainers_of(session: Session, checkpoint: Record) -> set[str]:
    """Who registered the checkpoint: the worker registers a run's checkpoints as the principal who started the run."""
    return {checkpoint.created_by}


def decide(
    uow: UnitOfWork, deployment: Record, project_name: str, actor: str, decision: Decision, note: str
) -> RecordEvent:
    session = uow.session
    if deployment.kind != "deployment":
        raise ValidationFailed(f"record {deployment.id} is a {deployment.kind}, not a deployment")
    decided = [e for e in events_of(session, deployment.id) if e.type in ("approved", "rejected")]
    if decided:
        raise ImmutableRecord(
            f"deployment {deployment.name} v{deployment.version} was already {decided[0].type}; decisions are "
            "final, register a new deployment version to decide again"
        )
    policy = effective_policy(session.connection(), deployment.project_id)
    data: dict[str, Any] = {"note": note, "policy_version": policy.version}
    if decision == "approved":
        data.update(_approval_checks(session, deployment, actor, policy.spec))
    event = RecordEvent(record_id=deployment.id, type=decision, data=data, actor=actor)
    session.add(event)
    session.flush()
    uow.audit(
        actor=actor,
        action=f"deployment.{decision}",
        target=f"record:{deployment.id}",
        project=project_name,
        payload={"event": event.id, **data},
        policy_version=policy.version,
    )
    return event


def _approval_checks(session: Session, deployment: Record, actor: str, policy: dict[str, Any]) -> dict[str, Any]:
    checkpoint = _parent(session, deployment, "policy_checkpoint")
    trainers = trainers_of(session, checkpoint)
    if actor in trainers:
        raise SeparationOfDuties(
            f"{actor} registered or trained policy checkpoint {checkpoint.name} v{checkpoint.version}; "
            "another approver must decide",
            extra={"checkpoint": checkpoint.id},
        )
    waivers: list[str] = []
    graph, _ = load_graph(session, [deployment.id], "upstream")
    if graph.quarantined(deployment.id):
        covering = waivers_covering(session, deployment.project_id, "quarantined", [deployment.id])
        if not covering:
            revoked = sorted(graph.revoked & ({deployment.id} | graph.upstream_of(deployment.id)))
            raise Quarantined(
                "something upstream of this deployment was revoked: "
                + ", ".join(f"{graph.nodes[r].kind} {graph.nodes[r].name} v{graph.nodes[r].version}" for r in revoked),
                extra={"revoked": revoked},
            )
        waivers += [w.id for w in covering.values()]
    # the deployment recorded its evaluations' types at registration (its parents are pinned)
    evidence = list(deployment.derived["evidence_types"])
    missing = [t for t in policy["deployment_requires"] if t not in evidence]
    if missing:
        covering = waivers_covering(session, deployment.project_id, "evaluation_evidence_missing", [deployment.id])
        if not covering:
            raise EvaluationEvidenceMissing(
                f"the policy requires evaluations of type {missing} before deployment; this deployment has "
                f"{evidence or 'none'}. Register the evaluations and a new deployment version, or an approver "
                "may waive rule evaluation_evidence_missing",
                extra={"missing": missing, "present": evidence},
            )
        waivers += [w.id for w in covering.values()]
    return {
        "evidence": evidence,
        "missing_waived": missing,
        "waivers": sorted(set(waivers)),
        "checkpoint": checkpoint.id,
        "stale": graph.stale(deployment.id),
    }


def revoke(uow: UnitOfWork, record: Record, project_name: str, actor: str, reason: str) -> tuple[RecordEvent, int]:
    """A revocation event; returns it and how many records downstream are now quarantined."""
    session = uow.session
    if any(e.type == "revoked" for e in events_of(session, record.id)):
        raise ImmutableRecord(f"{record.kind} {record.name} v{record.version} is already revoked")
    if not reason.strip():
        raise ValidationFailed("a revocation needs a reason", errors=[{"loc": ["body", "reason"], "msg": "empty"}])
    event = RecordEvent(record_id=record.id, type="revoked", data={"reason": reason}, actor=actor)
    session.add(event)
    session.flush()
    _, downstream = load_graph(session, [record.id], "downstream")
    uow.audit(
        actor=actor,
        action="record.revoked",
        target=f"record:{record.id}",
        project=project_name,
        payload={"event": event.id, "reason": reason, "downstream": len(downstream)},
    )
    return event, len(downstream)
