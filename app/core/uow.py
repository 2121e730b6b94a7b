"""One request or one task is one unit of work: audit events are queued while it runs and appended to
the log inside the same transaction, just before the commit; work to do after the commit (enqueueing a
Celery task) is queued too and runs only once the commit succeeded."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Connection
from sqlalchemy.orm import Session


@dataclass(frozen=True)
class PendingAudit:
    actor: str
    action: str
    target: str
    project: str | None
    payload: Any
    policy_version: int | None


class AuditSink(Protocol):
    def append(self, conn: Connection, request_id: str, events: Sequence[PendingAudit]) -> None: ...


class UnitOfWork:
    """The transaction is held by an ORM session, or (`on_connection`, the registrations' hot path) by a
    connection, with a session over it built only when something asks for `session`: a registration
    that touches no ORM entity then pays for no session's bookkeeping."""

    def __init__(self, session: Session | None, *, request_id: str, audit_sink: AuditSink) -> None:
        self._session = session
        self._conn: Connection | None = None
        self.request_id = request_id
        self._audit_sink = audit_sink
        self._pending: list[PendingAudit] = []
        self._after_commit: list[Callable[[], None]] = []

    @classmethod
    def on_connection(cls, conn: Connection, *, request_id: str, audit_sink: AuditSink) -> UnitOfWork:
        """Begin a transaction on `conn` (the caller closes it) and work in it."""
        conn.begin()
        uow = cls(None, request_id=request_id, audit_sink=audit_sink)
        uow._conn = conn
        return uow

    @property
    def session(self) -> Session:
        if self._session is None:
            # joins the connection's transaction; commits stay ours, a rollback of the session rolls it back
            self._session = Session(bind=self._conn, expire_on_commit=False, join_transaction_mode="rollback_only")
        return self._session

    @property
    def connection(self) -> Connection:
        """The connection the transaction runs on."""
        return self._conn if self._conn is not None else self.session.connection()

    def audit(
        self,
        *,
        actor: str,
        action: str,
        target: str,
        project: str | None,
        payload: Any,
        policy_version: int | None = None,
    ) -> None:
        self._pending.append(PendingAudit(actor, action, target, project, payload, policy_version))

    def after_commit(self, fn: Callable[[], None]) -> None:
        self._after_commit.append(fn)

    def commit(self) -> None:
        if self._pending:
            self._audit_sink.append(self.connection, self.request_id, self._pending)
            self._pending = []
        if self._conn is None:
            self.session.commit()
        else:
            if self._session is not None and self._session.in_transaction():
                self._session.commit()  # flushes; the commit itself is the connection's
            self._conn.commit()
        callbacks, self._after_commit = self._after_commit, []
        for fn in callbacks:
            fn()

    def rollback(self) -> None:
        self._pending = []
        self._after_commit = []
        if self._session is not None:
            self._session.rollback()
        if self._conn is not None:
            self._conn.rollback()

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
