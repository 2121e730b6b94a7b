from __future__ import annotations

from sqlalchemy import exists, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.access.models import Membership
from app.access.service import Identity
from app.blobs.models import Blob, BlobUploader
from app.core.blobs import BlobInfo
from app.core.uow import UnitOfWork
from app.records.models import Record, RecordBlob


def record_upload(uow: UnitOfWork, principal: Identity, info: BlobInfo) -> bool:
    """Note a completed upload; True when the store did not know this content before."""
    session = uow.session
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    new = session.execute(
        insert(Blob).values(digest=info.digest, size=info.size).on_conflict_do_nothing().returning(Blob.digest)
    ).first()
    session.execute(insert(BlobUploader).values(digest=info.digest, principal_id=principal.id).on_conflict_do_nothing())
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


def can_read(session: Session, principal: Identity, digest: str) -> bool:
    """Its uploader, or a viewer of a project that has a record referencing it."""
    if principal.is_global_admin:
        return True
    uploaded = exists().where(BlobUploader.digest == digest, BlobUploader.principal_id == principal.id)
    referenced = (
        exists()
        .where(RecordBlob.digest == digest)
        .where(Record.id == RecordBlob.record_id)
        .where(Membership.project_id == Record.project_id, Membership.principal_id == principal.id)
    )
    return bool(session.execute(select(uploaded | referenced)).scalar())
