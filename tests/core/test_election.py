"""The election locks: one holder at a time, and a holder that dies (its file descriptor closed, its
PostgreSQL session ended) leaves the lock to the next campaign."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from celery.signals import worker_ready, worker_shutdown
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text

from app.core.db import make_engine
from app.core.election import (
    CAMPAIGN_INTERVAL_SECONDS,
    AdvisoryLock,
    Election,
    FileLock,
    SoleProcessLock,
    election_lock,
)
from app.main import create_app
from app.state import AppState
from workers import celery_app


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


def _until(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = threading.Event()
    timer = threading.Timer(seconds, deadline.set)
    timer.start()
    try:
        while not condition() and not deadline.is_set():
            deadline.wait(0.05)
        return condition()
    finally:
        timer.cancel()


def _running(election: Election | None) -> set[str]:
    """The names of the duty threads `election`'s process runs now."""
    if election is None:
        return set()
    return {loop.name for loop in election.loops if isinstance(loop, threading.Thread) and loop.is_alive()}


DUTIES = {"run-lease-reaper", "run-outbox", "audit-sequencer", "blob-sweeper"}


def test_an_api_process_and_a_worker_share_one_election(fresh_stack: AppState, monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker and an API process on one database: the first to campaign runs every duty, the other
    none, until the first goes; then the other takes them over."""
    worker_state = AppState.build(fresh_stack.settings)  # the worker's own engine: another session
    monkeypatch.setattr(celery_app, "state", lambda: worker_state)
    monkeypatch.setattr(celery_app, "_election", None)
    worker_ready.send(sender=None)  # what a Celery worker sends once it is up
    worker = celery_app._election
    try:
        assert worker is not None and worker.leading
        assert _running(worker) == DUTIES
        with TestClient(create_app(state=fresh_stack)) as client:
            api: Election = client.app.state.election  # type: ignore[attr-defined]
            assert not api.leading and _running(api) == set()
            assert client.get("/readyz").json()["process"]["background"] == "standby"
            assert _running(worker) == DUTIES  # the worker still runs them, alone

            worker_shutdown.send(sender=None)
            assert not worker.leading and _running(worker) == set()
            assert _until(lambda: api.leading, 5 * CAMPAIGN_INTERVAL_SECONDS)
            assert _running(api) == DUTIES
            assert client.get("/readyz").json()["process"]["background"] == "leader"
    finally:
        if worker is not None:
            worker.stop()
        worker_state.sessions.engine.dispose()
