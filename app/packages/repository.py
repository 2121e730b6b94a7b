"""Statements the handoff package gathers with. No business rules here."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import Select, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent
from app.blobs.models import Blob
from app.records.models import Record, RecordEdge, RecordEvent
from app.runs.models import Run


def records_by_ids(ids: Collection[str]) -> Select[Record]:
    return select(Record).where(Record.id.in_(ids)).order_by(Record.id)


def series_of(project_id: str, name: str) -> Select[Record]:
    """Every policy checkpoint registered under one name (a run registers its series under one name)."""
    return (
        select(Record)
        .where(Record.project_id == project_id, Record.kind == "policy_checkpoint", Record.name == name)
        .order_by(Record.version_key)
    )


def children_of(parent_ids: Collection[str], *, kind: str, role: str) -> Select[Record]:
    """Records of `kind` that name one of `parent_ids` as a parent under `role` (evaluations of a
    checkpoint: role target; waivers covering a record: role covers)."""
    return (
        select(Record)
        .join(RecordEdge, RecordEdge.child_id == Record.id)
        .where(RecordEdge.parent_id.in_(parent_ids), RecordEdge.role == role, Record.kind == kind)
        .distinct()
        .order_by(Record.id)
    )


def events_of(record_ids: Collection[str]) -> Select[RecordEvent]:
    return select(RecordEvent).where(RecordEvent.record_id.in_(record_ids)).order_by(RecordEvent.id)


def audit_events_for(project: str, targets: Collection[str]) -> Select[AuditEvent]:
    """The integrated events on `targets`, in log order: a package cites events an auditor can prove
    in the log's signed tree (the build integrates what is pending first)."""
    return (
        select(AuditEvent)
        .where(AuditEvent.project == project, AuditEvent.target.in_(targets), AuditEvent.index.is_not(None))
        .order_by(AuditEvent.index)
    )


def runs_by_ids(project_id: str, run_ids: Collection[str]) -> Select[Run]:
    return select(Run).where(Run.project_id == project_id, Run.id.in_(run_ids)).order_by(Run.id)


def package_with_inputs(project_id: str, name: str, inputs: str) -> Select[Record]:
    return (
        select(Record)
        .where(
            Record.project_id == project_id,
            Record.kind == "handoff_package",
            Record.name == name,
            Record.spec["inputs"].as_string() == inputs,
        )
        .order_by(Record.version_key)
        .limit(1)
    )


def note_blob(session: Session, digest: str, size: int) -> None:
    """The blob row of an object the server itself wrote to the store (idempotent)."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    session.execute(insert(Blob).values(digest=digest, size=size).on_conflict_do_nothing())
