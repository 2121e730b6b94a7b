"""Append-only decisions on records: deployment approval and rejection, and revocation.

Approval enforces, in this order: separation of duties (`separation_of_duties`: the approver registered
neither the policy checkpoint nor its run; never waivable); that nothing upstream is revoked
(`quarantined`); the evidence types the policy demands (`evaluation_evidence_missing`); that each of
them proves what its type claims (`evaluation_evidence_insufficient`, app.decisions.evidence); that the
checkpoint is its series' deployment candidate when a campaign evaluation rated the series, people's
when they judged it, else an AI judge's (`not_deployment_candidate`); and that it carries no
reward-hacking flag (`reward_hacking_flagged`, app.evaluations.flags). Each of the last five yields to a
waiver of its rule covering the deployment, and the approval event lists the rules it waived."""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.errors import (
    EvaluationEvidenceInsufficient,
    EvaluationEvidenceMissing,
    ImmutableRecord,
    NotDeploymentCandidate,
    Quarantined,
    RewardHackingFlagged,
    SeparationOfDuties,
    ValidationFailed,
)
from app.core.uow import UnitOfWork
from app.decisions.evidence import checkpoint_authors, insufficient_evidence
from app.evaluations.candidate import deciding_evaluation
from app.evaluations.flags import checkpoint_flags
from app.kinds.waiver import waivers_covering
from app.lineage.service import load_graph
from app.records.models import Record, RecordEvent
from app.records.service import effective_policy
from app.storage.base import BlobStore

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


def decide(
    uow: UnitOfWork,
    deployment: Record,
    project_name: str,
    actor: str,
    decision: Decision,
    note: str,
    store: BlobStore,
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
        data.update(_approval_checks(session, store, deployment, actor, policy.spec))
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


class _Waived:
    """The waivers an approval relied on, and the rules they waived."""

    def __init__(self, session: Session, deployment: Record) -> None:
        self.session = session
        self.deployment = deployment
        self.waivers: set[str] = set()
        self.rules: list[str] = []

    def covers(self, rule: str) -> bool:
        covering = waivers_covering(self.session, self.deployment.project_id, rule, [self.deployment.id])
        if covering:
            self.waivers |= {w.id for w in covering.values()}
            self.rules.append(rule)
        return bool(covering)


def _approval_checks(
    session: Session, store: BlobStore, deployment: Record, actor: str, policy: dict[str, Any]
) -> dict[str, Any]:
    checkpoint = _parent(session, deployment, "policy_checkpoint")
    if actor in checkpoint_authors(session, checkpoint):
        raise SeparationOfDuties(
            f"{actor} registered or trained policy checkpoint {checkpoint.name} v{checkpoint.version}; "
            "another approver must decide",
            extra={"checkpoint": checkpoint.id},
        )
    waived = _Waived(session, deployment)
    graph, _ = load_graph(session, [deployment.id], "upstream")
    if graph.quarantined(deployment.id) and not waived.covers("quarantined"):
        revoked = sorted(graph.revoked & ({deployment.id} | graph.upstream_of(deployment.id)))
        raise Quarantined(
            "something upstream of this deployment was revoked: "
            + ", ".join(f"{graph.nodes[r].kind} {graph.nodes[r].name} v{graph.nodes[r].version}" for r in revoked),
            extra={"revoked": revoked},
        )
    # the deployment recorded its evaluations' types at registration (its parents are pinned)
    evidence = list(deployment.derived["evidence_types"])
    missing = [t for t in policy["deployment_requires"] if t not in evidence]
    if missing and not waived.covers("evaluation_evidence_missing"):
        raise EvaluationEvidenceMissing(
            f"the policy requires evaluations of type {missing} before deployment; this deployment has "
            f"{evidence or 'none'}. Register the evaluations and a new deployment version, or an approver "
            "may waive rule evaluation_evidence_missing",
            extra={"missing": missing, "present": evidence},
        )
    _check_evidence(session, store, deployment, checkpoint, policy, waived)
    candidate = _check_candidate(session, checkpoint, waived)
    flags = _check_flags(session, checkpoint, policy, waived)
    return {
        "evidence": evidence,
        "missing_waived": missing,
        "waivers": sorted(waived.waivers),
        "waived_rules": waived.rules,
        "candidate": candidate,
        "flags": flags,
        "checkpoint": checkpoint.id,
        "stale": graph.stale(deployment.id),
    }


def _check_evidence(
    session: Session,
    store: BlobStore,
    deployment: Record,
    checkpoint: Record,
    policy: dict[str, Any],
    waived: _Waived,
) -> None:
    failures = insufficient_evidence(session, store, deployment, checkpoint, policy)
    if failures and not waived.covers("evaluation_evidence_insufficient"):
        raise EvaluationEvidenceInsufficient(
            "evaluations do not prove what their type claims: "
            + "; ".join(f"{f['name']} v{f['version']} ({f['type']}) {f['detail']}" for f in failures)
            + ". Register evaluations that do and a new deployment version, or an approver may waive rule "
            "evaluation_evidence_insufficient",
            extra={"failures": failures},
        )


def _check_candidate(session: Session, checkpoint: Record, waived: _Waived) -> str | None:
    """The series' candidate (a record id) when a campaign evaluation rated the series."""
    evaluation = deciding_evaluation(session, checkpoint.project_id, checkpoint.name)
    candidate = (evaluation.derived.get("candidate") if evaluation is not None else None) or {}
    chosen = candidate.get("model")
    if evaluation is not None and chosen and chosen != checkpoint.id and not waived.covers("not_deployment_candidate"):
        raise NotDeploymentCandidate(
            f"evaluation {evaluation.name} v{evaluation.version} rates {candidate['name']} v{candidate['version']} "
            f"highest of series {checkpoint.name}, not v{checkpoint.version}; deploy the candidate, or an approver "
            "may waive rule not_deployment_candidate with the reason",
            extra={"candidate": chosen, "evaluation": evaluation.id},
        )
    return str(chosen) if chosen else None


def _check_flags(session: Session, checkpoint: Record, policy: dict[str, Any], waived: _Waived) -> list[str]:
    flags = checkpoint_flags(session, checkpoint, policy)
    if flags and not waived.covers("reward_hacking_flagged"):
        raise RewardHackingFlagged(
            f"policy checkpoint {checkpoint.name} v{checkpoint.version} carries reward-hacking flags: "
            + "; ".join(f"{f['flag']}: {f['detail']}" for f in flags)
            + ". An approver may waive rule reward_hacking_flagged",
            extra={"flags": flags},
        )
    return [f["flag"] for f in flags]


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
