"""Audit events are append-only (triggers refuse UPDATE and DELETE). Each row keeps its RFC 9162 leaf
hash and a running hash chain; the Merkle tree of issue 6 is built over the same leaf hashes, so no
history needs rewriting when it arrives."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, UtcDateTime


class AuditEvent(Base):
    __tablename__ = "audit_event"

    index: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
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
    leaf_hash: Mapped[str] = mapped_column(String(64))
    chain_hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """One row: the size of the log and its last chain hash. Locked to append, so indexes never repeat."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    size: Mapped[int] = mapped_column(BigInteger)
    chain_hash: Mapped[str] = mapped_column(String(64))
