"""Training runs. A run row is mutable (its status moves queued -> running -> a final state, its lease
is renewed by heartbeats); what happened is kept in the append-only `run_event` table and in the audit
log, and what it produced are immutable records.

The run row is also the outbox of its broker message: a queued run with `next_dispatch_at` in the past is
sent again (app.runs.outbox), so a broker that was down or lost its queue never strands a run."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, JsonType, UtcDateTime, utcnow
from app.core.ids import uuid7


class Run(Base):
    __tablename__ = "run"
    __table_args__ = (
        Index("ix_run_listing", "project_id", "id"),
        Index("ix_run_leases", "status", "lease_expires_at"),
        Index("ix_run_dispatch", "status", "next_dispatch_at"),
        # a client's retry of one POST (same Idempotency-Key) finds the first run; NULL keys never collide
        Index("uq_run_idempotency", "project_id", "created_by", "idempotency_key", unique=True),
        Index("uq_run_token_hash", "token_hash", unique=True),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=uuid7)
    project_id: Mapped[str] = mapped_column(ForeignKey("project.id"))
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))
    inputs: Mapped[dict[str, Any]] = mapped_column(JsonType)
    params: Mapped[dict[str, Any]] = mapped_column(JsonType)
    output_name: Mapped[str] = mapped_column(String(200))
    outputs: Mapped[list[str]] = mapped_column(JsonType, default=list)
    error: Mapped[dict[str, Any] | None] = mapped_column(JsonType, nullable=True)
    config: Mapped[dict[str, Any] | None] = mapped_column(JsonType, nullable=True)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=1)
    lease_owner: Mapped[str | None] = mapped_column(String(200), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    dispatch_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_dispatch_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    request_digest: Mapped[str | None] = mapped_column(String(71), nullable=True)
    # an external run's token (its sha256, as for API tokens): cleared when the run ends (app.runs.external)
    token_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    token_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class RunEvent(Base):
    __tablename__ = "run_event"

    run_id: Mapped[str] = mapped_column(ForeignKey("run.id"), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    type: Mapped[str] = mapped_column(String(20))
    data: Mapped[dict[str, Any]] = mapped_column(JsonType)
