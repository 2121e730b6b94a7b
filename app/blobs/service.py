from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, exists, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.access.models import Membership, Principal
from app.access.service import Actor, Identity
from app.blobs.models import Blob, BlobUploader
from app.core.digests import is_digest
from app.core.errors import BlobMissing
from app.core.uow import UnitOfWork
from app.records.models import Record, RecordBlob
from app.storage.base import BlobInfo


def record_upload(uow: UnitOfWork, principal: Identity, info: BlobInfo) -> bool:
    """Note a completed upload; True when `principal` had not uploaded this content before (201 to the
    client). Whether the store held it already, uploaded by anyone else, is never told: a caller who
    guesses some content must not learn that another project stored it."""
    session = uow.session
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    session.execute(insert(Blob).values(digest=info.digest, size=info.size).on_conflict_do_nothing())
    new = session.execute(
        insert(BlobUploader)
        .values(digest=info.digest, principal_id=principal.id)
        .on_conflict_do_nothing()
        .returning(BlobUploader.digest)
    ).first()
    uow.audit(
        actor=principal.name,
        action="blob.uploaded",
        target=f"blob:{info.digest}",
        project=None,
        payload={"digest": info.digest, "size": info.size},
    )
    return new is not None


def blob_size(session: Session, digest: str) -> int | None:
    return session.execute(select(Blob.size).where(Blob.digest == digest)).scalar()


# Digests per statement: far below the bound-parameter limits of SQLite (32,766) and PostgreSQL's
# protocol (65,535), so a folder of any allowed size costs a few statements.
DIGESTS_PER_STATEMENT = 5_000


def readable_sizes(session: Session, principal: Identity, digests: Iterable[str]) -> dict[str, int]:
    """The size of each of `digests` that is stored and that `principal` may read.

    A global admin reads every blob; anyone else reads a blob they uploaded, or one that a record of a
    project where they hold a role (every role includes viewer) references. A digest left out is, to
    the caller, no blob at all: a stored blob the principal may not read must answer exactly like one
    that was never uploaded, so that a digest learnt elsewhere reveals nothing. Each statement seeks the
    blob, uploader and record_blob primary keys or indexes, and then membership's primary key."""
    wanted = sorted(set(digests))
    readable = None if principal.is_global_admin else _may_read(principal.id)
    sizes: dict[str, int] = {}
    for start in range(0, len(wanted), DIGESTS_PER_STATEMENT):
        stmt = select(Blob.digest, Blob.size).where(Blob.digest.in_(wanted[start : start + DIGESTS_PER_STATEMENT]))
        if readable is not None:
            stmt = stmt.where(readable)
        sizes.update({digest: size for digest, size in session.execute(stmt)})
    return sizes


def reader_named(session: Session, name: str) -> Identity:
    """The principal named `name` (callers below the routes carry the actor by name); an unknown name
    reads nothing."""
    row = session.execute(select(Principal.id, Principal.is_global_admin).where(Principal.name == name)).first()
    return Actor(id=str(row[0]), name=name, is_global_admin=bool(row[1])) if row else Actor("", name, False)


def require_readable(session: Session, actor: str, digest: Any, loc: list[Any]) -> None:
    """Refuse a blob a request cites outside a record (a run's input) unless `actor` may read it, with
    the same `blob_missing` as for a digest never uploaded. A value that is not a digest is left to the
    request's own validation."""
    if not isinstance(digest, str) or not is_digest(digest):
        return
    if digest not in readable_sizes(session, reader_named(session, actor), [digest]):
        raise BlobMissing(f"{digest} is not uploaded", errors=[{"loc": loc, "msg": "missing"}])


def _may_read(principal_id: str) -> ColumnElement[bool]:
    uploaded = exists().where(BlobUploader.digest == Blob.digest, BlobUploader.principal_id == principal_id)
    referenced = (
        exists()
        .where(RecordBlob.digest == Blob.digest)
        .where(Record.id == RecordBlob.record_id)
        .where(Membership.project_id == Record.project_id, Membership.principal_id == principal_id)
    )
    return or_(uploaded, referenced)
