from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, UtcDateTime, utcnow
from app.core.ids import uuid7


class BlobUploadSession(Base):
    """A multipart upload of one blob by one principal, open until completed, aborted or expired.

    The parts themselves live only in the blob store (`store_key`, `store_upload_id`): which ones are
    there is asked of the store each time, so nothing here changes while parts arrive."""

    __tablename__ = "blob_upload"
    __table_args__ = (UniqueConstraint("principal_id", "digest"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=uuid7)
    principal_id: Mapped[str] = mapped_column(ForeignKey("principal.id"))
    digest: Mapped[str] = mapped_column(String(71))
    size: Mapped[int] = mapped_column(BigInteger)
    part_size: Mapped[int] = mapped_column(BigInteger)
    backend: Mapped[str] = mapped_column(String(16))
    store_key: Mapped[str] = mapped_column(String(1024))
    store_upload_id: Mapped[str] = mapped_column(String(1024))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
