"""The write path appends events without a tree index; the sequencer integrates every committed event
exactly once, in an order consistent with commit, with dense indexes; the triggers let only its write
through."""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DatabaseError

from app.audit import sequencer
from app.audit.models import AuditEvent
from app.audit.service import AuditLog, verify_log
from app.core.uow import PendingAudit
from app.state import AppState
from tests.support.audit_tamper import edit_audit_log

LOG = AuditLog()


def _pending(n: int, tag: str) -> list[PendingAudit]:
    return [PendingAudit("tester", "test.sequenced", f"test:{tag}:{i}", None, {"i": i}, None) for i in range(n)]


def _append(state: AppState, request_id: str, n: int = 1) -> None:
    with state.sessions.write() as session, session.begin():
        LOG.append(session.connection(), request_id, _pending(n, request_id))


def _indexes(state: AppState, request_id: str) -> list[int | None]:
    with state.sessions.read() as session:
        stmt = select(AuditEvent.index).where(AuditEvent.request_id == request_id).order_by(AuditEvent.seq)
        return list(session.scalars(stmt))


def test_append_leaves_the_index_to_the_sequencer(fresh_stack: AppState) -> None:
    _append(fresh_stack, "req-a", 2)
    assert _indexes(fresh_stack, "req-a") == [None, None]
    assert sequencer.integrate_pending(fresh_stack.sessions) == 2
    assert _indexes(fresh_stack, "req-a") == [0, 1]
    assert sequencer.integrate_pending(fresh_stack.sessions) == 0  # nothing is integrated twice
    with fresh_stack.sessions.read() as session:
        assert verify_log(session).ok and verify_log(session).tree_size == 2


@dataclass
class _Clock:
    """A logical clock: ticks taken before a transaction begins and after its commit returned."""

    ticks: itertools.count[int] = field(default_factory=itertools.count)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def tick(self) -> int:
        with self.lock:
            return next(self.ticks)


def test_concurrent_writers_are_integrated_once_densely_and_in_commit_order(fresh_stack: AppState) -> None:
    clock = _Clock()
    committed: dict[str, tuple[int, int]] = {}  # request id -> (tick before begin, tick after commit)
    rolled_back: list[str] = []
    lock = threading.Lock()
    background = sequencer.Sequencer(fresh_stack.sessions, merge_delay_seconds=0.01)
    background.start()

    def writer(w: int) -> None:
        for i in range(12):
            request_id = f"w{w}-{i}"
            began = clock.tick()
            with fresh_stack.sessions.write() as session:
                with session.begin():
                    LOG.append(session.connection(), request_id, _pending(1 + i % 3, request_id))
                    if i % 5 == 4:
                        session.rollback()
                        with lock:
                            rolled_back.append(request_id)
                        continue
                with lock:
                    committed[request_id] = (began, clock.tick())

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    background.stop()
    background.join(timeout=30)
    sequencer.integrate_pending(fresh_stack.sessions)

    with fresh_stack.sessions.read() as session:
        rows = session.execute(select(AuditEvent.request_id, AuditEvent.index)).all()
        assert verify_log(session).ok
    by_request: dict[str, list[int]] = {}
    for request_id, index in rows:
        assert index is not None
        by_request.setdefault(request_id, []).append(index)
    assert set(by_request) == set(committed) and not set(rolled_back) & set(by_request)
    assert sorted(i for indexes in by_request.values() for i in indexes) == list(range(len(rows)))
    for a, b in itertools.permutations(committed, 2):
        if committed[a][1] < committed[b][0]:  # a's commit returned before b began
            assert max(by_request[a]) < min(by_request[b]), (a, b)


def test_a_late_commit_with_a_lower_seq_is_integrated_after_the_earlier_commit(postgres_stack: AppState) -> None:
    sessions = postgres_stack.sessions
    slow = sessions.write()
    slow.begin()
    LOG.append(slow.connection(), "late-low-seq", _pending(1, "late"))  # draws its seq first
    _append(postgres_stack, "early-high-seq")  # draws a higher seq, commits first
    sequencer.integrate_pending(sessions)
    [early] = _indexes(postgres_stack, "early-high-seq")
    slow.commit()
    slow.close()
    assert _indexes(postgres_stack, "late-low-seq") == [None]
    sequencer.integrate_pending(sessions)
    [late] = _indexes(postgres_stack, "late-low-seq")
    assert early is not None and late is not None and late > early


def test_one_sequencer_at_a_time_on_postgres(postgres_stack: AppState) -> None:
    _append(postgres_stack, "while-held")
    with postgres_stack.sessions.engine.connect() as other:
        other.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": sequencer.ADVISORY_KEY})
        assert sequencer.integrate_pending(postgres_stack.sessions) == 0  # another sequencer is elected
        assert _indexes(postgres_stack, "while-held") == [None]
        other.rollback()
    assert sequencer.integrate_pending(postgres_stack.sessions) >= 1
    assert _indexes(postgres_stack, "while-held") != [None]


def test_background_sequencer_integrates_within_its_delay(fresh_stack: AppState) -> None:
    background = sequencer.Sequencer(fresh_stack.sessions, merge_delay_seconds=0.02)
    background.start()
    try:
        _append(fresh_stack, "by-the-thread")
        integrated = threading.Event()
        for _ in range(500):  # bounded: the thread looks every 10 ms
            if _indexes(fresh_stack, "by-the-thread") == [0]:
                integrated.set()
                break
            integrated.wait(0.02)
        assert integrated.is_set()
    finally:
        background.stop()
        background.join(timeout=30)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_event SET \"index\" = 7, chain_hash = leaf_hash, actor = 'mallory'",  # more than the index
        'UPDATE audit_event SET "index" = 7',  # the index without the chain
        "DELETE FROM audit_event",
    ],
)
def test_triggers_refuse_all_but_the_sequencers_write(fresh_stack: AppState, statement: str) -> None:
    _append(fresh_stack, "pending")
    with fresh_stack.sessions.engine.connect() as conn:
        with pytest.raises(DatabaseError, match="immutable_record"):
            conn.execute(text(statement))
        conn.rollback()
    sequencer.integrate_pending(fresh_stack.sessions)
    with fresh_stack.sessions.engine.connect() as conn:  # once integrated, not even the index moves
        with pytest.raises(DatabaseError, match="immutable_record"):
            conn.execute(text('UPDATE audit_event SET "index" = 7, chain_hash = leaf_hash'))
        conn.rollback()


def test_an_edited_event_is_found_before_and_after_integration(fresh_stack: AppState) -> None:
    _append(fresh_stack, "edited")
    edit_audit_log(fresh_stack.sessions.engine, "UPDATE audit_event SET actor = 'mallory'")
    with fresh_stack.sessions.read() as session:
        result = verify_log(session)
    assert not result.ok and result.first_bad_index is None and "not yet integrated" in str(result.problem)
    sequencer.integrate_pending(fresh_stack.sessions)
    with fresh_stack.sessions.read() as session:
        result = verify_log(session)
    assert not result.ok and result.first_bad_index == 0 and "leaf hash" in str(result.problem)
