"""32 concurrent writers on PostgreSQL never wait on each other for the audit log: sampled `pg_locks`
shows no backend waiting for a lock of an audit table, or on a row lock held by a transaction that
writes one, while they register and the sequencer integrates."""

from __future__ import annotations

import threading

from fastapi.testclient import TestClient
from sqlalchemy import Connection, text

from app.audit import sequencer
from app.audit.service import AuditLog
from app.core.uow import PendingAudit
from app.main import create_app
from app.state import AppState
from tests.conftest import World

WRITERS = 32
REGISTRATIONS = 8
AUDIT_TABLES = ("audit_event", "audit_head")
# every lock some backend of this database waits for: what it waits on, the relation where the lock
# names one, and the statements of the waiting backend and of the backends blocking it
WAITS = text(
    """
    SELECT l.locktype, l.relation::regclass::text, w.query,
           (SELECT string_agg(b.query, ' | ') FROM pg_stat_activity b WHERE b.pid = ANY(pg_blocking_pids(w.pid)))
    FROM pg_locks l JOIN pg_stat_activity w ON w.pid = l.pid
    WHERE NOT l.granted AND w.datname = current_database()
    """
)


class LockSampler(threading.Thread):
    """Reads the waiting locks again and again until stopped; keeps every wait seen."""

    def __init__(self, conn: Connection) -> None:
        super().__init__(daemon=True, name="lock-sampler")
        self.conn = conn
        self.waits: list[tuple[str, str | None, str, str | None]] = []
        self.samples = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            self.waits += [tuple(row) for row in self.conn.execute(WAITS)]  # type: ignore[misc]
            self.conn.rollback()
            self.samples += 1


def _on_audit(wait: tuple[str, str | None, str, str | None]) -> bool:
    _, relation, waiting, blocking = wait
    return relation in AUDIT_TABLES or any(t in f"{waiting} {blocking}" for t in AUDIT_TABLES)


def _sample(state: AppState, work: threading.Thread) -> LockSampler:
    with state.sessions.engine.connect() as conn:
        sampler = LockSampler(conn)
        sampler.start()
        work.start()
        work.join(timeout=120)
        sampler.stopped.set()
        sampler.join(timeout=30)
    return sampler


def test_the_sampler_sees_a_wait_on_the_audit_head(postgres_stack: AppState) -> None:
    """The probe itself: a transaction queued behind another's row lock of `audit_head` is seen."""
    engine = postgres_stack.sessions.engine
    with postgres_stack.sessions.write() as session, session.begin():  # one event, so a head row
        AuditLog().append(session.connection(), "probe", [PendingAudit("probe", "test.probe", "t", None, {}, None)])
    sequencer.integrate_pending(postgres_stack.sessions)
    with engine.connect() as holder:
        holder.execute(text("SELECT size FROM audit_head FOR UPDATE"))

        def waiter() -> None:
            with engine.connect() as conn:
                conn.execute(text("SET lock_timeout = '1s'"))
                try:
                    conn.execute(text("SELECT size FROM audit_head FOR UPDATE"))
                except Exception:
                    conn.rollback()

        sampler = _sample(postgres_stack, threading.Thread(target=waiter))
        holder.rollback()
    assert any(_on_audit(w) for w in sampler.waits)


def test_32_writers_wait_on_no_audit_lock(postgres_stack: AppState) -> None:
    background = sequencer.Sequencer(postgres_stack.sessions, merge_delay_seconds=0.02)
    statuses: list[int] = []
    with TestClient(create_app(postgres_stack.settings, state=postgres_stack)) as client:
        world = World(postgres_stack, client)
        projects = [world.project() for _ in range(WRITERS)]
        barrier = threading.Barrier(WRITERS)

        def writer(project: str) -> None:
            barrier.wait()
            for i in range(REGISTRATIONS):
                response = world.admin.post(
                    f"/v1/projects/{project}/policies", json={"spec": {"gold_share_min": i / 100}}
                )
                statuses.append(response.status_code)

        def load() -> None:
            threads = [threading.Thread(target=writer, args=(p,)) for p in projects]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=100)

        background.start()
        try:
            sampler = _sample(postgres_stack, threading.Thread(target=load))
        finally:
            background.stop()
            background.join(timeout=30)
    assert statuses == [201] * (WRITERS * REGISTRATIONS)
    assert sampler.samples > 10
    assert [w for w in sampler.waits if _on_audit(w)] == []
