"""Statements the pages need beyond the REST services: a project's latest version of every series, a
record's direct children and files, recent runs. Summary columns only where a page lists many rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select

from app.blobs.models import Blob
from app.records.models import Record, RecordBlob, RecordEdge
from app.runs.models import Run


def latest_of_every_series(project_id: str) -> Select[str, str, str, str, datetime, str, int]:
    """(id, kind, name, version, created_at, created_by, versions) of the latest version per (kind, name)."""
    series = (
        select(
            Record.kind,
            Record.name,
            func.max(Record.version_key).label("key"),
            func.count().label("versions"),
        )
        .where(Record.project_id == project_id)
        .group_by(Record.kind, Record.name)
        .subquery()
    )
    return (
        select(
            Record.id,
            Record.kind,
            Record.name,
            Record.version,
            Record.created_at,
            Record.created_by,
            series.c.versions,
        )
        .join(
            series,
            (Record.kind == series.c.kind) & (Record.name == series.c.name) & (Record.version_key == series.c.key),
        )
        .where(Record.project_id == project_id)
        .order_by(Record.kind, Record.name)
    )


def derived_of(ids: list[str]) -> Select[str, dict[str, Any]]:
    return select(Record.id, Record.derived).where(Record.id.in_(ids))


def children_of(record_id: str) -> Select[str, str, str, str, str, datetime]:
    """Direct children: (id, kind, name, version, role, created_at), newest first."""
    return (
        select(Record.id, Record.kind, Record.name, Record.version, RecordEdge.role, Record.created_at)
        .join(RecordEdge, RecordEdge.child_id == Record.id)
        .where(RecordEdge.parent_id == record_id)
        .order_by(Record.id.desc())
    )


def files_of(record_id: str) -> Select[str, str, int]:
    """Every blob a record references, its own and the ones the server derived: (path, digest, size)."""
    return (
        select(RecordBlob.path, RecordBlob.digest, Blob.size)
        .join(Blob, Blob.digest == RecordBlob.digest)
        .where(RecordBlob.record_id == record_id)
        .order_by(RecordBlob.path)
    )


def recent_runs(project_id: str, limit: int) -> Select[Run]:
    return select(Run).where(Run.project_id == project_id).order_by(Run.id.desc()).limit(limit)


def run_by_id(run_id: str) -> Select[Run]:
    return select(Run).where(Run.id == run_id)
