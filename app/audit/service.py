"""Appending to, reading and verifying the audit log."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Select, bindparam, insert, select, update
from sqlalchemy.orm import Session

from app.audit.chain import GENESIS, leaf_fields, leaf_hash, next_chain_hash
from app.audit.merkle import root_from_leaf_hashes
from app.audit.models import AuditEvent, AuditHead
from app.core.db import utcnow
from app.core.digests import digest_of
from app.core.prepared import Prepared
from app.core.uow import PendingAudit

HEAD_ID = 1


# Appending runs in every write transaction: Core statements built once and run below SQLAlchemy's
# execution layer (the ORM's flush of a new event and a changed head cost several times the statements).
_HEAD = Prepared(select(AuditHead.size, AuditHead.chain_hash).where(AuditHead.id == HEAD_ID).with_for_update())
_INSERT_HEAD = Prepared(insert(AuditHead.__table__))  # type: ignore[arg-type]
_UPDATE_HEAD = Prepared(
    update(AuditHead)
    .where(AuditHead.id == HEAD_ID)
    .values(size=bindparam("new_size"), chain_hash=bindparam("new_chain_hash"))
)
_INSERT_EVENT = Prepared(insert(AuditEvent.__table__))  # type: ignore[arg-type]


class AuditLog:
    """The `AuditSink` the unit of work appends through."""

    def append(self, conn: Connection, request_id: str, events: Sequence[PendingAudit]) -> None:
        """Append `events` after the head, which stays locked (FOR UPDATE; SQLite's writer lock) until the
        transaction ends, so indexes never repeat and the chain never forks."""
        head = _HEAD.first(conn)
        size, chain = (0, GENESIS) if head is None else (int(head[0]), str(head[1]))
        at = utcnow()
        rows = []
        for pending in events:
            fields = leaf_fields(
                index=size,
                at=at,
                actor=pending.actor,
                action=pending.action,
                target=pending.target,
                project=pending.project,
                request_id=request_id,
                policy_version=pending.policy_version,
                payload_digest=digest_of(pending.payload),
                token_id=pending.token_id,
            )
            leaf = leaf_hash(fields)
            chain = next_chain_hash(chain, leaf)
            # every row names every column (one prepared INSERT for all), token_id null when none
            rows.append({**fields, "token_id": pending.token_id, "at": at, "leaf_hash": leaf, "chain_hash": chain})
            size += 1
        _INSERT_EVENT.execute(conn, rows[0] if len(rows) == 1 else rows)
        if head is None:
            _INSERT_HEAD.execute(conn, {"id": HEAD_ID, "size": size, "chain_hash": chain})
        else:
            _UPDATE_HEAD.execute(conn, {"new_size": size, "new_chain_hash": chain})


def list_events_stmt(
    *, projects: Sequence[str] | None, project: str | None, record: str | None, after: int | None
) -> Select[AuditEvent]:
    """Events in index order; `projects=None` means every project (global admin)."""
    stmt = select(AuditEvent).order_by(AuditEvent.index)
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
    )
    fields["leaf_hash"] = event.leaf_hash
    return fields


@dataclass
class VerifyResult:
    ok: bool
    tree_size: int
    root_hash: str
    chain_hash: str
    first_bad_index: int | None = None
    problem: str | None = None


def verify_log(session: Session, *, batch: int = 5000) -> VerifyResult:
    """Recompute every leaf hash, the chain and the RFC 9162 root from the stored columns.

    Stops at the first event that does not check and names it."""
    leaves: list[str] = []
    previous = GENESIS
    stmt = select(AuditEvent).order_by(AuditEvent.index).execution_options(yield_per=batch)

    def fail(index: int, problem: str) -> VerifyResult:
        size, root = root_from_leaf_hashes(leaves)
        return VerifyResult(False, size, root, previous, index, problem)

    for event in session.scalars(stmt):
        if event.index != len(leaves):
            return fail(len(leaves), "event missing")
        fields = event_to_dict(event)
        fields.pop("leaf_hash")
        if leaf_hash(fields) != event.leaf_hash:
            return fail(event.index, "leaf hash does not match the event's fields")
        chain = next_chain_hash(previous, event.leaf_hash)
        if chain != event.chain_hash:
            return fail(event.index, "chain hash does not match")
        previous = chain
        leaves.append(event.leaf_hash)
    head = session.get(AuditHead, HEAD_ID)
    if head is not None and (head.size != len(leaves) or head.chain_hash != previous):
        return fail(len(leaves), "the log's head does not match its events (events removed or added)")
    size, root = root_from_leaf_hashes(leaves)
    return VerifyResult(True, size, root, previous)
