from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, UtcDateTime, utcnow


class Blob(Base):
    """A content-addressed object known to be complete in the blob store."""

    __tablename__ = "blob"

    digest: Mapped[str] = mapped_column(String(71), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class BlobUploader(Base):
    __tablename__ = "blob_uploader"

    digest: Mapped[str] = mapped_column(ForeignKey("blob.digest"), primary_key=True)
    principal_id: Mapped[str] = mapped_column(ForeignKey("principal.id"), primary_key=True)
    uploaded_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
