"""Records are immutable: database triggers (see the initial migration) refuse UPDATE and DELETE on
`record`, `record_edge`, `record_blob` and `record_event`. `record_series` is the one mutable row per
(project, kind, name): a version counter and the lock that serialises registrations in a series."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, JsonType, UtcDateTime, utcnow
from app.core.ids import uuid7


class Record(Base):
    __tablename__ = "record"
    __table_args__ = (
        UniqueConstraint("project_id", "kind", "name", "version"),
        Index("ix_record_series_order", "project_id", "kind", "name", "version_key"),
        Index("ix_record_content", "project_id", "kind", "name", "content_digest", "version_key"),
        Index("ix_record_listing", "project_id", "kind", "id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=uuid7)
    kind: Mapped[str] = mapped_column(String(40))
    project_id: Mapped[str] = mapped_column(ForeignKey("project.id"))
    name: Mapped[str] = mapped_column(String(200))
    version: Mapped[str] = mapped_column(String(40))
    version_key: Mapped[str] = mapped_column(String(40))
    digest: Mapped[str] = mapped_column(String(71), index=True)
    content_digest: Mapped[str] = mapped_column(String(71))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))
    parents: Mapped[list[dict[str, Any]]] = mapped_column(JsonType)
    spec: Mapped[dict[str, Any]] = mapped_column(JsonType)
    blobs: Mapped[list[dict[str, Any]]] = mapped_column(JsonType)
    derived: Mapped[dict[str, Any]] = mapped_column(JsonType)

    def pinned(self) -> dict[str, Any]:
        """The record as others cite it exactly: a run's inputs, a package's summary."""
        return {"id": self.id, "kind": self.kind, "name": self.name, "version": self.version, "digest": self.digest}


class RecordEdge(Base):
    __tablename__ = "record_edge"

    child_id: Mapped[str] = mapped_column(ForeignKey("record.id"), primary_key=True)
    parent_id: Mapped[str] = mapped_column(ForeignKey("record.id"), primary_key=True, index=True)
    role: Mapped[str] = mapped_column(String(40), primary_key=True)


class RecordBlob(Base):
    __tablename__ = "record_blob"

    record_id: Mapped[str] = mapped_column(ForeignKey("record.id"), primary_key=True)
    path: Mapped[str] = mapped_column(String(1000), primary_key=True)
    digest: Mapped[str] = mapped_column(ForeignKey("blob.digest"), index=True)


class RecordSeries(Base):
    __tablename__ = "record_series"

    project_id: Mapped[str] = mapped_column(ForeignKey("project.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    last_version: Mapped[int] = mapped_column(Integer, default=0)


class RecordEvent(Base):
    """Append-only status events on a record: approval, rejection, revocation, deprecation."""

    __tablename__ = "record_event"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=uuid7)
    record_id: Mapped[str] = mapped_column(ForeignKey("record.id"), index=True)
    type: Mapped[str] = mapped_column(String(40))
    data: Mapped[dict[str, Any]] = mapped_column(JsonType)
    actor: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
