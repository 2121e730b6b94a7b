"""One request or one task is one unit of work: audit events are queued while it runs and appended to
the log inside the same transaction, just before the commit; work to do after the commit (enqueueing a
Celery task) is queued too and runs only once the commit succeeded."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection
from sqlalchemy.orm import Session

from app.core.db import discard_after_failed_commit, utcnow


@dataclass(frozen=True)
class PendingAudit:
    actor: str
    action: str
    target: str
    project: str | None
    payload: Any
    policy_version: int | None
    token_id: str | None = None  # the API token (by id, never its secret) whose request made the write
    # fixed when the event is queued, so its leaf hash is known before the commit (a registration's
    # answer carries it) and is the one the log stores
    at: datetime = field(default_factory=utcnow)
    event_id: str = field(default_factory=lambda: str(uuid.uuid4()))


class AuditSink(Protocol):
    def append(self, conn: Connection, request_id: str, events: Sequence[PendingAudit]) -> None: ...


class UnitOfWork:
    """One ORM session, holding the unit's one connection and one transaction. Nothing below the unit
    commits: `commit` appends the queued audit events in the transaction, commits it, then runs the
    work queued for after the commit; `rollback` drops both queues."""

    def __init__(self, session: Session, *, request_id: str, audit_sink: AuditSink) -> None:
        self.session = session
        self.request_id = request_id
        self._audit_sink = audit_sink
        self._pending: list[PendingAudit] = []
        self._after_commit: list[Callable[[], None]] = []
        # set by the request's authentication: every audit event of the unit names the token
        self.token_id: str | None = None

    @property
    def connection(self) -> Connection:
        """The connection the transaction runs on, for Core statements."""
        return self.session.connection()

    def audit(
        self,
        *,
        actor: str,
        action: str,
        target: str,
        project: str | None,
        payload: Any,
        policy_version: int | None = None,
    ) -> PendingAudit:
        pending = PendingAudit(actor, action, target, project, payload, policy_version, self.token_id)
        self._pending.append(pending)
        return pending

    def after_commit(self, fn: Callable[[], None]) -> None:
        self._after_commit.append(fn)

    def commit(self) -> None:
        if self._pending:
            self._audit_sink.append(self.connection, self.request_id, self._pending)
            self._pending = []
        conn = self.session.connection() if self.session.in_transaction() else None
        try:
            self.session.commit()
        except Exception:
            if conn is not None:
                discard_after_failed_commit(conn)
            raise
        callbacks, self._after_commit = self._after_commit, []
        for fn in callbacks:
            fn()

    def rollback(self) -> None:
        self._pending = []
        self._after_commit = []
        self.session.rollback()

    def close(self) -> None:
        self.session.close()
