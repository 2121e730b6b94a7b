"""What one running service holds: settings, sessions, blob store, audit log and signing key."""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass, field

import anyio

from app.audit.service import AuditLog
from app.core.blobs import BlobStore
from app.core.blobstores import open_blob_store
from app.core.db import SessionFactory, make_engine
from app.core.group_commit import GroupCommit
from app.core.settings import Settings
from app.core.signing import SigningKey, load_signing_key
from app.core.uow import UnitOfWork
from app.runs.dispatch import Dispatcher
from app.runs.queue import CeleryDispatcher


@dataclass
class AppState:
    settings: Settings
    sessions: SessionFactory
    blobs: BlobStore
    audit: AuditLog
    signing_key: SigningKey
    dispatcher: Dispatcher = field(default=None)  # type: ignore[assignment]
    _write_limiters: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.CapacityLimiter] = field(
        default_factory=weakref.WeakKeyDictionary, init=False, repr=False
    )
    _group_commits: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, GroupCommit] = field(
        default_factory=weakref.WeakKeyDictionary, init=False, repr=False
    )

    def __post_init__(self) -> None:
        if self.dispatcher is None:
            self.dispatcher = CeleryDispatcher(self.settings)

    @classmethod
    def build(cls, settings: Settings) -> AppState:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = make_engine(settings.database_url, pool_size=settings.db_pool_size)
        return cls(
            settings=settings,
            sessions=SessionFactory(engine),
            blobs=open_blob_store(settings),
            audit=AuditLog(),
            signing_key=load_signing_key(settings),
        )

    @property
    def write_limiter(self) -> anyio.CapacityLimiter | None:
        """How many write units run at once in the thread pool: one on SQLite, which has one writer
        anyway. The others wait on the event loop instead of in threads, where they would contend for
        the database lock and the GIL (which cost more CPU than the writes: bench/api.py). PostgreSQL
        writers share the default pool. One limiter per event loop (a test may run several)."""
        if not self.settings.is_sqlite:
            return None
        loop = asyncio.get_running_loop()
        limiter = self._write_limiters.get(loop)
        if limiter is None:
            limiter = self._write_limiters[loop] = anyio.CapacityLimiter(1)
        return limiter

    @property
    def group_commit(self) -> GroupCommit:
        """The SQLite group commit of quick registrations on this event loop (app/core/group_commit.py)."""
        loop = asyncio.get_running_loop()
        group = self._group_commits.get(loop)
        if group is None:
            group = self._group_commits[loop] = GroupCommit(lambda: self.sessions.write_connection(nowait=True))
        return group

    def unit_of_work(self, *, request_id: str, write: bool = True) -> UnitOfWork:
        session = self.sessions.write() if write else self.sessions.read()
        return UnitOfWork(session, request_id=request_id, audit_sink=self.audit)
