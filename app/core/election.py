"""Elect one process of a deployment to run the background loops (`app.background.duties`: run reaper,
run outbox, audit sequencer, blob sweep).

Every API process (`serve --workers N`, on every replica) and every Celery worker campaigns; the one
holding the election lock runs the loops, the others stand by and campaign again every few seconds.
The lock is one the operating system or the database server releases when its holder dies, so a killed
or restarted process never leaves the deployment without its loops for longer than one campaign
interval:

- PostgreSQL: a session-level advisory lock (`pg_try_advisory_lock`) held on one connection of the
  leader's pool; the server drops it with the connection. One lock per database, so one leader across
  every replica that shares it.
- SQLite: an exclusive `flock` on a file beside the database file, dropped with the process's file
  descriptor. SQLite is one machine, so one lock per database file is one per deployment.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from sqlalchemy import Connection, Engine, make_url, text
from sqlalchemy.exc import SQLAlchemyError

log = logging.getLogger("rlhf_registry.election")
# how often a standby process tries to take the lock, and the leader checks that it still holds it
CAMPAIGN_INTERVAL_SECONDS = 2.0
ADVISORY_KEY = int.from_bytes(hashlib.sha256(b"rlhf-registry background loops").digest()[:8], "big", signed=True)


class ElectionLock(Protocol):
    def try_acquire(self) -> bool: ...

    def still_held(self) -> bool: ...

    def release(self) -> None: ...


class Loop(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...


class AdvisoryLock:
    """A PostgreSQL session-level advisory lock on a connection kept out of the pool while held."""

    def __init__(self, engine: Engine, key: int = ADVISORY_KEY) -> None:
        self.engine = engine
        self.key = key
        self._conn: Connection | None = None

    def try_acquire(self) -> bool:
        conn = self.engine.connect()
        try:
            taken = bool(conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key}).scalar_one())
            conn.commit()
        except BaseException:
            conn.invalidate()
            conn.close()
            raise
        if not taken:
            conn.close()
            return False
        self._conn = conn
        return True

    def still_held(self) -> bool:
        if self._conn is None:
            return False
        try:
            self._conn.execute(text("SELECT 1"))
            self._conn.commit()
        except SQLAlchemyError:
            # the server ended the session (a restart, a network cut): its lock went with it
            self.release()
            return False
        return True

    def release(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            # closing the server session releases the lock even where an unlock would fail; the pool
            # opens a fresh connection in its place
            conn.invalidate()
            conn.close()


class FileLock:
    """An exclusive, non-blocking `flock` on `path`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def still_held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)


class SoleProcessLock:
    """An in-memory database lives in one process: that process is the leader."""

    def __init__(self) -> None:
        self._held = False

    def try_acquire(self) -> bool:
        self._held = True
        return True

    def still_held(self) -> bool:
        return self._held

    def release(self) -> None:
        self._held = False


def election_lock(engine: Engine, database_url: str) -> ElectionLock:
    """The lock that elects one process among those sharing the database at `database_url`."""
    if not database_url.startswith("sqlite"):
        return AdvisoryLock(engine)
    database = make_url(database_url).database
    if not database or database == ":memory:":
        return SoleProcessLock()
    return FileLock(Path(f"{database}.leader.lock"))


class Election(threading.Thread):
    """Campaign for `lock`; while it is held, run the loops `make_loops` builds (fresh ones after each
    win, as a thread runs once). `leading` says whether this process holds the lock now."""

    def __init__(
        self,
        lock: ElectionLock,
        make_loops: Callable[[], Sequence[Loop]],
        *,
        interval_seconds: float = CAMPAIGN_INTERVAL_SECONDS,
    ) -> None:
        super().__init__(daemon=True, name="background-election")
        self.lock = lock
        self.make_loops = make_loops
        self.interval_seconds = interval_seconds
        self.stopped = threading.Event()
        self._loops: Sequence[Loop] = ()
        self._leading = False

    @property
    def leading(self) -> bool:
        return self._leading

    @property
    def loops(self) -> Sequence[Loop]:
        """The loops this process runs now (none while it stands by)."""
        return self._loops

    def start(self) -> None:
        # the first campaign before serving, so that a lone process runs its loops from its first request
        self._campaign()
        super().start()

    def run(self) -> None:
        while not self.stopped.wait(self.interval_seconds):
            self._campaign()

    def _campaign(self) -> None:
        try:
            if self._leading:
                if not self.lock.still_held():
                    log.warning("lost the background lock (pid %d): standing by", os.getpid())
                    self._stand_down()
            elif self.lock.try_acquire():
                self._loops = self.make_loops()
                for loop in self._loops:
                    loop.start()
                self._leading = True
                log.info("elected to run the background loops (pid %d)", os.getpid())
        except Exception:
            # the database is unreachable: campaign again next round
            log.exception("campaign for the background lock failed")

    def _stand_down(self) -> None:
        for loop in self._loops:
            loop.stop()
        self._loops = ()
        self._leading = False

    def stop(self) -> None:
        self.stopped.set()
        if self.is_alive():
            self.join(timeout=self.interval_seconds + 5)
        self._stand_down()
        with contextlib.suppress(Exception):
            self.lock.release()
