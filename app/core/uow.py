"""One request or one task is one unit of work: audit events are queued while it runs and appended to
the log inside the same transaction, just before the commit; work to do after the commit (enqueueing a
Celery task) is queued too and runs only once the commit succeeded."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from sqlalchemy import Connection, Transaction, text
from sqlalchemy.orm import Session

from app.core.db import discard_after_failed_commit, driver_in_transaction
from app.core.prepared import Prepared


@dataclass(frozen=True)
class PendingAudit:
    actor: str
    action: str
    target: str
    project: str | None
    payload: Any
    policy_version: int | None
    token_id: str | None = None  # the API token (by id, never its secret) whose request made the write


class AuditSink(Protocol):
    def append(self, conn: Connection, request_id: str, events: Sequence[PendingAudit]) -> None: ...


class _Savepoint:
    """A savepoint run as `Prepared` statements: SQLAlchemy's `begin_nested` runs SAVEPOINT and RELEASE
    through its whole execution layer, which cost a fifth of a registration in a group commit. The
    connection's own transaction (SQLAlchemy's) is the one the savepoint lives in."""

    BEGIN = Prepared(text("SAVEPOINT rlhf_unit"))
    RELEASE = Prepared(text("RELEASE SAVEPOINT rlhf_unit"))
    UNDO = Prepared(text("ROLLBACK TO SAVEPOINT rlhf_unit"))

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self.BEGIN.execute(conn)
        self.is_active = True

    def commit(self) -> None:
        self.is_active = False
        self.RELEASE.execute(self._conn)

    def rollback(self) -> None:
        self.is_active = False
        if not driver_in_transaction(self._conn):
            return  # the whole transaction is gone (its group fails at commit); keep the original error
        self.UNDO.execute(self._conn)
        self.RELEASE.execute(self._conn)


class UnitOfWork:
    """The transaction is held by an ORM session, or (`on_connection`, the registrations' hot path) by a
    connection, with a session over it built only when something asks for `session`: a registration
    that touches no ORM entity then pays for no session's bookkeeping.

    On a connection the unit may also be a savepoint of a transaction its caller commits (SQLite's group
    commit, `app.core.group_commit`): `commit` then releases the savepoint, and the work to do after the
    commit waits in `after_outer_commit` for the caller."""

    def __init__(self, session: Session | None, *, request_id: str, audit_sink: AuditSink) -> None:
        self._session = session
        self._conn: Connection | None = None
        self._tx: Transaction | _Savepoint | None = None
        self._savepoint = False
        self.request_id = request_id
        self._audit_sink = audit_sink
        self._pending: list[PendingAudit] = []
        self._after_commit: list[Callable[[], None]] = []
        self.after_outer_commit: list[Callable[[], None]] = []
        # set by the request's authentication: every audit event of the unit names the token
        self.token_id: str | None = None

    @classmethod
    def on_connection(
        cls, conn: Connection, *, request_id: str, audit_sink: AuditSink, savepoint: bool = False
    ) -> UnitOfWork:
        """Begin a transaction on `conn` (or, with `savepoint`, a savepoint of the one it is in) and work
        in it; the caller closes the connection."""
        uow = cls(None, request_id=request_id, audit_sink=audit_sink)
        uow._tx = _Savepoint(conn) if savepoint else conn.begin()
        uow._conn = conn
        uow._savepoint = savepoint
        return uow

    @property
    def session(self) -> Session:
        if self._session is None:
            # joins the connection's transaction: commits stay the unit's, and `close` leaves the
            # transaction alone. In a savepoint of a shared transaction the session works in a savepoint
            # of its own, so that its rollback (after a failed flush, say) undoes no other unit's writes.
            mode: Literal["create_savepoint", "rollback_only"] = (
                "create_savepoint" if self._savepoint else "rollback_only"
            )
            self._session = Session(bind=self._conn, expire_on_commit=False, join_transaction_mode=mode)
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
        self._pending.append(PendingAudit(actor, action, target, project, payload, policy_version, self.token_id))

    def after_commit(self, fn: Callable[[], None]) -> None:
        self._after_commit.append(fn)

    def commit(self) -> None:
        if self._pending:
            self._audit_sink.append(self.connection, self.request_id, self._pending)
            self._pending = []
        if self._tx is None:
            self.session.commit()
        else:
            if self._session is not None and self._session.in_transaction():
                self._session.commit()  # flushes; the commit itself is the connection's
            try:
                self._tx.commit()
            except Exception:
                if not self._savepoint and self._conn is not None:
                    discard_after_failed_commit(self._conn)
                raise
        callbacks, self._after_commit = self._after_commit, []
        if self._savepoint:
            self.after_outer_commit += callbacks
            return
        for fn in callbacks:
            fn()

    def rollback(self) -> None:
        self._pending = []
        self._after_commit = []
        if self._tx is None:
            self.session.rollback()
            return
        if self._session is not None:
            self._session.close()
        if self._tx.is_active:
            self._tx.rollback()

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
