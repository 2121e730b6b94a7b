"""Sweep the blob store of what interrupted transfers leave behind: `rlhf-registry blobs gc` and a
background thread of the API process.

Two kinds of leftovers. Upload sessions that expired are aborted through the uploads service (their
rows go, audited, with their multipart uploads). Then whatever the store holds in its temporary area
that is older than `older_than` and that no open session names: the multipart upload of a crash
between the store's start of an upload and the commit of its session row, the temporary object or
file of a streaming write that was killed, the object of a completion interrupted after its parts were
assembled. Finished blobs live under their digest keys, outside the temporary area, and are never
looked at.

Every step is idempotent (aborting a gone upload, deleting a gone object are no-ops, and expired
sessions are locked with SKIP LOCKED), so every replica may sweep: one wins each item.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select

from app.core.db import utcnow
from app.core.errors import Unavailable
from app.state import AppState
from app.storage.base import Leftover
from app.uploads import service as uploads_service
from app.uploads.models import BlobUploadSession

log = logging.getLogger("rlhf_registry.blob_sweep")
SESSION_BATCH = 100


@dataclass(frozen=True)
class SweepResult:
    expired_sessions: list[str]
    """`upload <id> of <digest>` for each expired upload session."""
    leftovers: list[Leftover]

    def lines(self) -> list[str]:
        return self.expired_sessions + [item.describe() for item in self.leftovers]


def sweep(state: AppState, *, older_than: timedelta, dry_run: bool = False) -> SweepResult:
    """Abort expired upload sessions and remove store leftovers older than `older_than` (with
    `dry_run`, only say which). `older_than` must exceed the longest upload request: the part of a
    session opened meanwhile is older than its row."""
    store = state.blobs
    expired = _expired_sessions(state)
    if not dry_run:
        _abort_expired(state)
    found = store.leftovers(utcnow() - older_than)
    with state.sessions.read() as session:
        live = set(
            session.execute(
                select(BlobUploadSession.store_key).where(
                    BlobUploadSession.backend == store.backend, BlobUploadSession.expires_at > utcnow()
                )
            ).scalars()
        )
    stray = [item for item in found if item.key not in live]
    if not dry_run:
        for item in stray:
            store.remove_leftover(item)
    return SweepResult(expired, stray)


def _expired_sessions(state: AppState) -> list[str]:
    with state.sessions.read() as session:
        rows = session.execute(
            select(BlobUploadSession.id, BlobUploadSession.digest)
            .where(BlobUploadSession.expires_at <= utcnow())
            .order_by(BlobUploadSession.expires_at)
        ).all()
    return [f"expired upload session {row.id} of {row.digest}" for row in rows]


def _abort_expired(state: AppState) -> None:
    while True:
        uow = state.unit_of_work(request_id="blob-sweep")
        try:
            aborted = uploads_service.abort_expired(uow, state.blobs, limit=SESSION_BATCH)
            uow.commit()
        finally:
            uow.close()
        if aborted < SESSION_BATCH:
            return


class BlobSweeper(threading.Thread):
    """Runs `sweep` every `blob_gc_interval_seconds` (the first time one interval after start)."""

    def __init__(self, state: AppState) -> None:
        super().__init__(daemon=True, name="blob-sweeper")
        self.state = state
        self.stopped = threading.Event()

    def run(self) -> None:
        settings = self.state.settings
        older_than = timedelta(hours=settings.blob_gc_older_than_hours)
        while not self.stopped.wait(settings.blob_gc_interval_seconds):
            try:
                result = sweep(self.state, older_than=older_than)
                if result.lines():
                    log.info("blob store swept: %s", "; ".join(result.lines()))
            except Unavailable:
                log.warning("blob store sweep skipped: the store or the database is unavailable")
            except Exception:
                log.exception("blob store sweep failed")

    def stop(self) -> None:
        self.stopped.set()
