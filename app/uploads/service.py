"""Multipart upload sessions for large blobs.

A session plans the blob as numbered parts of `part_size` bytes (the last one shorter) and opens a
multipart upload in the blob store. Parts go straight to the store (S3: presigned URLs) or through
`PUT .../parts/{number}` (filesystem); which ones have arrived is always asked of the store, so a client
that was interrupted re-POSTs the same digest and size and sends only what is missing. Completion lets
the store assemble and hash the parts: the blob appears under its digest only if the hash is the one
declared, and is then recorded exactly like `POST /v1/blobs` (`blobs_service.record_upload`).

Sessions belong to the principal that opened them (anyone else gets `not_found`) and expire
`SESSION_TTL` after they were opened. Expired sessions answer `not_found` and are aborted lazily: a
`POST /v1/blobs/uploads` aborts the principal's own expired session for that digest, `DELETE` aborts a
session whether or not it has expired, and the blob sweep (`app.blobs.sweep`) aborts the rest (their
rows deleted and committed first, their store uploads aborted after the commit, so no store call holds
the database's write lock), along with store state that a crash left between opening the store's upload
and committing the session row. A store outage (`Unavailable`, 503) changes nothing here: the session
stays as it was and the client retries the same call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.access import service as access_service
from app.access.service import Identity
from app.blobs import service as blobs_service
from app.core.db import utcnow
from app.core.errors import AppError, DigestMismatch, Forbidden, NotFound, PayloadTooLarge, ValidationFailed
from app.core.uow import UnitOfWork
from app.storage.base import BlobInfo, BlobStore, MultipartUpload, PartWriter
from app.uploads.models import BlobUploadSession

log = logging.getLogger("rlhf_registry.uploads")
MiB = 1024 * 1024
UPLOADERS = frozenset({"annotator", "trainer"})
SESSION_TTL = timedelta(hours=24)
DEFAULT_PART_SIZE = 64 * MiB
MIN_PART_SIZE = 5 * MiB
"""S3's smallest part but the last; applied on every backend so that clients behave the same."""
MAX_PART_SIZE = 5 * 1024 * MiB
MAX_PARTS = 10_000
MAX_URL_EXPIRY_S = 7 * 24 * 3600
"""The longest a SigV4 presigned URL may live."""


@dataclass(frozen=True)
class PartStatus:
    number: int
    size: int
    uploaded: bool
    url: str | None


@dataclass(frozen=True)
class SessionView:
    session: BlobUploadSession
    parts: list[PartStatus]


@dataclass(frozen=True)
class AlreadyStored:
    info: BlobInfo


@dataclass(frozen=True)
class Completed:
    info: BlobInfo
    created: bool


@dataclass(frozen=True)
class Rejected:
    """The completion consumed the session and failed; the session's removal is to be committed."""

    error: AppError


def part_sizes(size: int, part_size: int) -> list[int]:
    full, rest = divmod(size, part_size)
    return [part_size] * full + ([rest] if rest else [])


def choose_part_size(size: int, requested: int | None) -> int:
    if requested is None:
        needed = -(-size // MAX_PARTS)
        return max(DEFAULT_PART_SIZE, -(-needed // MiB) * MiB)
    if not MIN_PART_SIZE <= requested <= MAX_PART_SIZE:
        raise ValidationFailed(
            f"part_size must be between {MIN_PART_SIZE} and {MAX_PART_SIZE} bytes",
            errors=[{"loc": ["body", "part_size"], "msg": "out of range"}],
        )
    if -(-size // requested) > MAX_PARTS:
        raise ValidationFailed(
            f"{size} bytes in parts of {requested} makes more than {MAX_PARTS} parts; use larger parts",
            errors=[{"loc": ["body", "part_size"], "msg": "too many parts"}],
        )
    return requested


def _require_uploader(session: Session, principal: Identity) -> None:
    if not access_service.holds_any_role(session, principal, UPLOADERS):
        raise Forbidden("uploading blobs needs the annotator or trainer role in some project")


def _upload_of(row: BlobUploadSession) -> MultipartUpload:
    return MultipartUpload(row.store_key, row.store_upload_id)


def _gone(upload_id: str) -> NotFound:
    return NotFound(f"upload {upload_id} not found (or completed, aborted or expired)")


def find(
    session: Session,
    store: BlobStore,
    principal: Identity,
    upload_id: str,
    *,
    expired_ok: bool = False,
    uploader: bool = False,
) -> BlobUploadSession:
    """The principal's session `upload_id` (`not_found` for anyone else's, or once expired); with
    `uploader`, the principal must also still hold an uploading role (`forbidden`)."""
    row = session.execute(
        select(BlobUploadSession).where(
            BlobUploadSession.id == upload_id, BlobUploadSession.principal_id == principal.id
        )
    ).scalar_one_or_none()
    if row is None or row.backend != store.backend or (row.expires_at <= utcnow() and not expired_ok):
        raise _gone(upload_id)
    if uploader:
        _require_uploader(session, principal)
    return row


def _stored(store: BlobStore, row: BlobUploadSession) -> set[int] | None:
    return store.stored_parts(_upload_of(row), part_sizes(row.size, row.part_size))


def _view(store: BlobStore, row: BlobUploadSession, stored: set[int]) -> SessionView:
    upload = _upload_of(row)
    expires_s = max(1, min(MAX_URL_EXPIRY_S, int((row.expires_at - utcnow()).total_seconds())))
    return SessionView(
        row,
        [
            PartStatus(number, size, number in stored, store.part_url(upload, number, expires_s))
            for number, size in enumerate(part_sizes(row.size, row.part_size), 1)
        ],
    )


def _discard(uow: UnitOfWork, store: BlobStore, row: BlobUploadSession, *, actor: str, action: str) -> None:
    """Abort the session's store state (if it is in this store) and delete its row, audited."""
    if row.backend == store.backend:
        store.abort_multipart(_upload_of(row))
    _forget(uow, row, actor=actor, action=action)


def _forget(uow: UnitOfWork, row: BlobUploadSession, *, actor: str, action: str) -> None:
    uow.session.execute(delete(BlobUploadSession).where(BlobUploadSession.id == row.id))
    uow.audit(
        actor=actor,
        action=action,
        target=f"blob:{row.digest}",
        project=None,
        payload={"upload_id": row.id, "digest": row.digest, "size": row.size},
    )


def abort_expired(uow: UnitOfWork, store: BlobStore, *, limit: int) -> int:
    """Delete up to `limit` of the oldest expired sessions, audited, and abort their store uploads once `uow`
    committed; returns how many. Concurrent sweeps skip each other's rows. An abort that fails after the
    commit leaves the upload to the sweep's leftovers step, which removes what no session names."""
    rows = (
        uow.session.execute(
            select(BlobUploadSession)
            .where(BlobUploadSession.expires_at <= utcnow())
            .order_by(BlobUploadSession.expires_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        .scalars()
        .all()
    )
    for row in rows:
        _forget(uow, row, actor="registry", action="blob.upload_expired")
        if row.backend == store.backend:
            uow.after_commit(_abort_quietly(store, _upload_of(row)))
    return len(rows)


def _abort_quietly(store: BlobStore, upload: MultipartUpload) -> Callable[[], None]:
    def abort() -> None:
        try:
            store.abort_multipart(upload)
        except Exception as exc:
            log.warning(
                "upload %s not aborted (%s: %s); the leftovers sweep removes it", upload.key, type(exc).__name__, exc
            )

    return abort


def start(
    uow: UnitOfWork,
    store: BlobStore,
    principal: Identity,
    *,
    digest: str,
    size: int,
    part_size: int | None,
    max_blob_bytes: int,
) -> tuple[SessionView, bool] | AlreadyStored:
    """Open a session, or return the principal's unfinished one for this digest and size (False)."""
    session = uow.session
    _require_uploader(session, principal)
    if size > max_blob_bytes:
        raise PayloadTooLarge(f"blobs are limited to {max_blob_bytes} bytes on this server")
    existing = session.execute(
        select(BlobUploadSession)
        .where(BlobUploadSession.principal_id == principal.id, BlobUploadSession.digest == digest)
        .with_for_update()
    ).scalar_one_or_none()
    # only a blob the principal may already read counts as stored: anyone else sends the bytes (and so
    # becomes an uploader), and learns nothing about a digest cited elsewhere
    stored_size = blobs_service.readable_sizes(session, principal, [digest]).get(digest)
    if stored_size is not None:
        if stored_size != size:
            raise ValidationFailed(
                f"blob {digest} is stored with {stored_size} bytes, not {size}",
                errors=[{"loc": ["body", "size"], "msg": f"{digest} has {stored_size} bytes"}],
            )
        if existing is not None:
            _discard(uow, store, existing, actor=principal.name, action="blob.upload_aborted")
        return AlreadyStored(BlobInfo(digest, size))
    if existing is not None:
        stored = _stored(store, existing) if existing.backend == store.backend else None
        if existing.size == size and existing.expires_at > utcnow() and stored is not None:
            return _view(store, existing, stored), False
        _discard(uow, store, existing, actor=principal.name, action="blob.upload_aborted")
    chosen = choose_part_size(size, part_size)
    upload = store.start_multipart()
    now = utcnow()
    row = BlobUploadSession(
        principal_id=principal.id,
        digest=digest,
        size=size,
        part_size=chosen,
        backend=store.backend,
        store_key=upload.key,
        store_upload_id=upload.upload_id,
        created_at=now,
        expires_at=now + SESSION_TTL,
    )
    session.add(row)
    session.flush()
    uow.audit(
        actor=principal.name,
        action="blob.upload_started",
        target=f"blob:{digest}",
        project=None,
        payload={"upload_id": row.id, "digest": digest, "size": size, "part_size": chosen},
    )
    return _view(store, row, set()), True


def view(store: BlobStore, row: BlobUploadSession) -> SessionView:
    stored = _stored(store, row)
    if stored is None:
        raise _gone(row.id)
    return _view(store, row, stored)


class PartReceiver:
    """Counts a part's bytes into the store's part writer; the part must be exactly its planned size."""

    def __init__(self, writer: PartWriter, number: int, expected: int) -> None:
        self._writer = writer
        self.number = number
        self.expected = expected
        self.received = 0

    def write(self, chunk: bytes) -> None:
        self.received += len(chunk)
        if self.received > self.expected:
            raise self._wrong_size("more than")
        self._writer.write(chunk)

    def commit(self) -> int:
        if self.received != self.expected:
            raise self._wrong_size(f"{self.received} bytes, not")
        return self._writer.commit()

    def abort(self) -> None:
        self._writer.abort()

    def _wrong_size(self, got: str) -> ValidationFailed:
        return ValidationFailed(
            f"part {self.number} must be exactly {self.expected} bytes; got {got} that",
            errors=[{"loc": ["body"], "msg": f"part {self.number} is {self.expected} bytes"}],
        )


def open_part(store: BlobStore, row: BlobUploadSession, number: int) -> PartReceiver:
    sizes = part_sizes(row.size, row.part_size)
    if not 1 <= number <= len(sizes):
        raise ValidationFailed(
            f"upload {row.id} has parts 1 to {len(sizes)}",
            errors=[{"loc": ["path", "number"], "msg": "no such part"}],
        )
    return PartReceiver(store.part_writer(_upload_of(row), number), number, sizes[number - 1])


def complete(uow: UnitOfWork, store: BlobStore, principal: Identity, row: BlobUploadSession) -> Completed | Rejected:
    """Assemble and verify the blob of `row` (found with `find(..., uploader=True)`).

    The store does its (long) work before this unit of work touches the database, so no write lock is
    held while a large blob is hashed; the store, not a row lock, makes concurrent completions safe.
    Missing parts raise and leave the session open; a wrong digest (or a store that lost the upload)
    consumes the session, returned as `Rejected`."""
    try:
        info = store.complete_multipart(_upload_of(row), part_sizes(row.size, row.part_size), row.digest)
    except (DigestMismatch, NotFound) as exc:
        _discard(uow, store, row, actor=principal.name, action="blob.upload_rejected")
        return Rejected(_gone(row.id) if isinstance(exc, NotFound) else exc)
    created = blobs_service.record_upload(uow, principal, info)
    uow.session.execute(delete(BlobUploadSession).where(BlobUploadSession.id == row.id))
    return Completed(info, created)


def abort(uow: UnitOfWork, store: BlobStore, principal: Identity, upload_id: str) -> None:
    row = find(uow.session, store, principal, upload_id, expired_ok=True)
    _discard(uow, store, row, actor=principal.name, action="blob.upload_aborted")
