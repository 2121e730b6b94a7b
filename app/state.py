"""What one running service holds: settings, sessions, blob store, audit log and signing key."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.audit.service import AuditLog
from app.core.db import SessionFactory, make_engine
from app.core.settings import Settings
from app.core.signing import SigningKey, load_signing_key
from app.core.uow import UnitOfWork
from app.runs.dispatch import Dispatcher
from app.runs.queue import CeleryDispatcher
from app.storage import open_blob_store
from app.storage.base import BlobStore


@dataclass
class AppState:
    settings: Settings
    sessions: SessionFactory
    blobs: BlobStore
    audit: AuditLog
    signing_key: SigningKey
    dispatcher: Dispatcher = field(default=None)  # type: ignore[assignment]

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

    def unit_of_work(self, *, request_id: str, write: bool = True) -> UnitOfWork:
        session = self.sessions.write() if write else self.sessions.read()
        return UnitOfWork(session, request_id=request_id, audit_sink=self.audit)
