"""The election locks: one holder at a time, and a holder that dies (its file descriptor closed, its
PostgreSQL session ended) leaves the lock to the next campaign."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, text

from app.core.db import make_engine
from app.core.election import AdvisoryLock, Election, FileLock, SoleProcessLock, election_lock


@pytest.fixture
def pg_engine(pg_database: str) -> Iterator[Engine]:
    engine = make_engine(pg_database, pool_size=2)
    yield engine
    engine.dispose()


def test_a_file_lock_has_one_holder_until_released(tmp_path: Path) -> None:
    first, second = FileLock(tmp_path / "db.leader.lock"), FileLock(tmp_path / "db.leader.lock")

    assert first.try_acquire() and first.still_held()
    assert not second.try_acquire()
    first.release()
    assert not first.still_held()
    assert second.try_acquire()
    second.release()


@pytest.mark.postgres
def test_an_advisory_lock_passes_on_when_its_session_ends(pg_engine: Engine) -> None:
    first, second = AdvisoryLock(pg_engine, key=42), AdvisoryLock(pg_engine, key=42)
    assert first.try_acquire()
    assert not second.try_acquire()

    # the server ends the holder's session, as a restart or a killed process would
    with pg_engine.connect() as admin:
        admin.execute(text("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND objid = 42"))
        admin.commit()

    assert not first.still_held()
    assert second.try_acquire()
    second.release()


def test_the_lock_follows_the_database(tmp_path: Path) -> None:
    engine = create_engine("sqlite://")
    try:
        assert isinstance(election_lock(engine, "sqlite://"), SoleProcessLock)
        assert isinstance(election_lock(engine, f"sqlite:///{tmp_path}/r.db"), FileLock)
        assert isinstance(election_lock(engine, "postgresql://h/db"), AdvisoryLock)
    finally:
        engine.dispose()


class Counted:
    def __init__(self, log: list[str]) -> None:
        self.log = log

    def start(self) -> None:
        self.log.append("start")

    def stop(self) -> None:
        self.log.append("stop")


def test_only_the_elected_process_runs_the_loops(tmp_path: Path) -> None:
    lock_path = tmp_path / "db.leader.lock"
    runs: list[str] = []
    leader = Election(FileLock(lock_path), lambda: [Counted(runs)], interval_seconds=0.05)
    standby = Election(FileLock(lock_path), lambda: [Counted(runs)], interval_seconds=0.05)
    leader.start()
    standby.start()
    try:
        assert (leader.leading, standby.leading) == (True, False)
        assert runs == ["start"]
        leader.stop()
        for _ in range(200):
            if standby.leading:
                break
            standby.stopped.wait(0.05)
        assert standby.leading
        assert runs == ["start", "stop", "start"]
    finally:
        leader.stop()
        standby.stop()
