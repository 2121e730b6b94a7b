"""Appending to, reading and verifying the audit log.

A write appends its events in its own transaction, hashed and numbered (`seq`) but without a tree
index: no row is shared between writers, so concurrent writes never wait on each other here. The
sequencer (`app.audit.sequencer`) integrates committed events into the tree afterwards.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, insert, select
from sqlalchemy.orm import Session

from app.audit.chain import GENESIS, leaf_fields, leaf_hash, next_chain_hash
from app.audit.merkle import root_from_leaf_hashes
from app.audit.models import AuditEvent, AuditHead
from app.core.digests import digest_of
from app.core.uow import PendingAudit

HEAD_ID = 1
_INSERT_EVENT = insert(AuditEvent)


def event_row(request_id: str, pending: PendingAudit, *, at: datetime, event_id: str) -> dict[str, Any]:
    """The `audit_event` row of one queued event, with its RFC 9162 leaf hash (over leaf data that holds
    its `event_id` and not its tree index, which it gets when the sequencer integrates it)."""
    fields = leaf_fields(
        index=None,
        at=at,
        actor=pending.actor,
        action=pending.action,
        target=pending.target,
        project=pending.project,
        request_id=request_id,
        policy_version=pending.policy_version,
        payload_digest=digest_of(pending.payload),
        token_id=pending.token_id,
        event_id=event_id,
    )
    # every row names every column (one INSERT for all), token_id null when none
    return {
        **fields,
        "index": None,
        "token_id": pending.token_id,
        "at": at,
        "leaf_hash": leaf_hash(fields),
        "chain_hash": None,
    }


class AuditLog:
    """The `AuditSink` the unit of work appends through."""

    def append(self, conn: Connection, request_id: str, events: Sequence[PendingAudit]) -> None:
        """Insert `events`, each with its RFC 9162 leaf hash and no tree index (one INSERT, no lock
        beyond the new rows' own)."""
        rows = [event_row(request_id, pending, at=pending.at, event_id=pending.event_id) for pending in events]
        conn.execute(_INSERT_EVENT, rows)


def leaf_hash_of(request_id: str, pending: PendingAudit) -> str:
    """The RFC 9162 leaf hash `pending` will have in the log once its unit commits."""
    return str(event_row(request_id, pending, at=pending.at, event_id=pending.event_id)["leaf_hash"])


def list_events_stmt(
    *, projects: Sequence[str] | None, project: str | None, record: str | None, after: int | None
) -> Select[AuditEvent]:
    """Integrated events in index order; `projects=None` means every project (global admin)."""
    stmt = select(AuditEvent).where(AuditEvent.index.is_not(None)).order_by(AuditEvent.index)
    if projects is not None:
        stmt = stmt.where(AuditEvent.project.in_(projects))
    if project is not None:
        stmt = stmt.where(AuditEvent.project == project)
    if record is not None:
        stmt = stmt.where(AuditEvent.target == f"record:{record}")
    if after is not None:
        stmt = stmt.where(AuditEvent.index > after)
    return stmt


def page(
    session: Session,
    *,
    projects: Sequence[str] | None,
    project: str | None,
    record: str | None,
    after: int | None,
    limit: int,
) -> list[AuditEvent]:
    stmt = list_events_stmt(projects=projects, project=project, record=record, after=after).limit(limit)
    return list(session.scalars(stmt))


def event_to_dict(event: AuditEvent) -> dict[str, Any]:
    fields = leaf_fields(
        index=event.index,
        at=event.at,
        actor=event.actor,
        action=event.action,
        target=event.target,
        project=event.project,
        request_id=event.request_id,
        policy_version=event.policy_version,
        payload_digest=event.payload_digest,
        token_id=event.token_id,
        event_id=event.event_id,
    )
    # the tree index is shown even where it is not part of the leaf data (null until integrated)
    return {"index": event.index, **fields, "leaf_hash": event.leaf_hash}


@dataclass
class VerifyResult:
    ok: bool
    tree_size: int
    root_hash: str
    chain_hash: str
    first_bad_index: int | None = None
    problem: str | None = None


def verify_log(session: Session, *, batch: int = 5000) -> VerifyResult:
    """Recompute every leaf hash, the chain and the RFC 9162 root from the stored columns, then the
    leaf hash of every event not yet integrated.

    Stops at the first event that does not check and names it (by tree index; events not yet
    integrated have none, and are named in `problem` by their event id)."""
    leaves: list[str] = []
    previous = GENESIS
    integrated = (
        select(AuditEvent)
        .where(AuditEvent.index.is_not(None))
        .order_by(AuditEvent.index)
        .execution_options(yield_per=batch)
    )

    def fail(index: int | None, problem: str) -> VerifyResult:
        size, root = root_from_leaf_hashes(leaves)
        return VerifyResult(False, size, root, previous, index, problem)

    for event in session.scalars(integrated):
        if event.index != len(leaves):
            return fail(len(leaves), "event missing")
        if not _leaf_checks(event):
            return fail(event.index, "leaf hash does not match the event's fields")
        chain = next_chain_hash(previous, event.leaf_hash)
        if chain != event.chain_hash:
            return fail(event.index, "chain hash does not match")
        previous = chain
        leaves.append(event.leaf_hash)
    head = session.get(AuditHead, HEAD_ID)
    counted = (0, GENESIS) if head is None else (head.size, head.chain_hash)
    if counted != (len(leaves), previous):
        return fail(len(leaves), "the log's head does not match its events (events removed or added)")
    pending = (
        select(AuditEvent).where(AuditEvent.index.is_(None)).order_by(AuditEvent.seq).execution_options(yield_per=batch)
    )
    for event in session.scalars(pending):
        if event.event_id is None or event.chain_hash is not None or not _leaf_checks(event):
            return fail(None, f"event {event.event_id} (not yet integrated): its leaf hash does not match its fields")
    size, root = root_from_leaf_hashes(leaves)
    return VerifyResult(True, size, root, previous)


def _leaf_checks(event: AuditEvent) -> bool:
    fields = event_to_dict(event)
    del fields["leaf_hash"]
    if event.event_id is not None:
        del fields["index"]
    return leaf_hash(fields) == event.leaf_hash
