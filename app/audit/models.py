"""Audit events are append-only: triggers refuse DELETE, and refuse UPDATE except the sequencer's one
write to an event, which sets its tree `index` and `chain_hash` where both were null. Each row keeps its
RFC 9162 leaf hash, computed when the event was written; the sequencer (`app.audit.sequencer`) gives
events their place in the Merkle tree afterwards, so writers never wait on each other for it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, UtcDateTime

# SQLite allocates an autoincrement key only for an INTEGER PRIMARY KEY (the rowid)
SEQ_TYPE = BigInteger().with_variant(Integer(), "sqlite")


class AuditEvent(Base):
    __tablename__ = "audit_event"
    __table_args__ = (
        # the sequencer's queue: the events not yet integrated, in the order they were numbered
        Index(
            "ix_audit_event_unintegrated",
            "seq",
            postgresql_where=text('"index" IS NULL'),
            sqlite_where=text('"index" IS NULL'),
        ),
    )

    # the event's number in the order writers inserted it; not its place in the tree
    seq: Mapped[int] = mapped_column(SEQ_TYPE, primary_key=True, autoincrement=True)
    # the event's leaf index in the RFC 9162 tree; null until the sequencer integrates the event
    index: Mapped[int | None] = mapped_column(BigInteger, nullable=True, unique=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(80))
    target: Mapped[str] = mapped_column(String(300))
    project: Mapped[str | None] = mapped_column(String(63), nullable=True, index=True)
    request_id: Mapped[str] = mapped_column(String(64))
    policy_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    payload_digest: Mapped[str] = mapped_column(String(71))
    # the API token whose request made the write (null for the CLI, workers, and events before tokens
    # were recorded); part of the leaf data only when set
    token_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    # a random id in the leaf data of events hashed before they had an index (null for older events,
    # whose leaf data holds their index instead)
    event_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    leaf_hash: Mapped[str] = mapped_column(String(64))
    # the running chain over the tree, set with the index
    chain_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)


class AuditHead(Base):
    """One row, the sequencer's state: the size of the integrated tree and its last chain hash. Only the
    sequencer writes it, so writers never lock it."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    size: Mapped[int] = mapped_column(BigInteger)
    chain_hash: Mapped[str] = mapped_column(String(64))
