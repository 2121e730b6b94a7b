"""One request or one task is one unit of work: audit events are queued while it runs and appended to
the log inside the same transaction, just before the commit; work to do after the commit (enqueueing a
Celery task) is queued too and runs only once the commit succeeded."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

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
    def append(self, session: Session, request_id: str, events: Sequence[PendingAudit]) -> None: ...


class UnitOfWork:
    def __init__(self, session: Session, *, request_id: str, audit_sink: AuditSink) -> None:
        self.session = session
        self.request_id = request_id
        self._audit_sink = audit_sink
        self._pending: list[PendingAudit] = []
        self._after_commit: list[Callable[[], None]] = []

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
            self._audit_sink.append(self.session, self.request_id, self._pending)
            self._pending = []
        self.session.commit()
        callbacks, self._after_commit = self._after_commit, []
        for fn in callbacks:
            fn()

    def rollback(self) -> None:
        self._pending = []
        self._after_commit = []
        self.session.rollback()

    def close(self) -> None:
        self.session.close()
