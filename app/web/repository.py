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


def series_versions(project_id: str, kind: str, name: str) -> Select[str]:
    """Ids of every version of one series, oldest first."""
    return (
        select(Record.id)
        .where(Record.project_id == project_id, Record.kind == kind, Record.name == name)
        .order_by(Record.version_key)
    )


def previous_version(record: Record) -> Select[Record]:
    """The version just before `record` in its series (none for the first)."""
    return (
        select(Record)
        .where(
            Record.project_id == record.project_id,
            Record.kind == record.kind,
            Record.name == record.name,
            Record.version_key < record.version_key,
        )
        .order_by(Record.version_key.desc())
        .limit(1)
    )


def next_version(record: Record) -> Select[str, str]:
    """(id, version) of the version just after `record` in its series (none for the latest)."""
    return (
        select(Record.id, Record.version)
        .where(
            Record.project_id == record.project_id,
            Record.kind == record.kind,
            Record.name == record.name,
            Record.version_key > record.version_key,
        )
        .order_by(Record.version_key)
        .limit(1)
    )


def records_by_ids(ids: list[str]) -> Select[Record]:
    return select(Record).where(Record.id.in_(ids))


def evaluations_of(target_ids: list[str]) -> Select[str, Record]:
    """(target id, evaluation record) for every evaluation registered against one of `target_ids`."""
    return (
        select(RecordEdge.parent_id, Record)
        .join(RecordEdge, RecordEdge.child_id == Record.id)
        .where(RecordEdge.parent_id.in_(target_ids), RecordEdge.role == "target", Record.kind == "evaluation")
        .order_by(Record.id)
    )


def run_ordinals(project_id: str) -> Select[str, int]:
    """(run id, n): the run is the n-th run of its output name in the project, by creation order. A run
    has no version of its own; this number, with the output name, is how people tell runs apart."""
    ordinal = func.row_number().over(partition_by=Run.output_name, order_by=Run.id).label("ordinal")
    return select(Run.id, ordinal).where(Run.project_id == project_id)


def runs_by_ids(project_id: str, ids: list[str]) -> Select[Run]:
    return select(Run).where(Run.project_id == project_id, Run.id.in_(ids)).order_by(Run.id)


def run_ordinal(run: Run) -> Select[int]:
    """The n of `run_ordinals` for one run."""
    return select(func.count()).where(
        Run.project_id == run.project_id, Run.output_name == run.output_name, Run.id <= run.id
    )


def policy_spec(project_id: str, version: int) -> Select[dict[str, Any]]:
    """The spec of one version of a project's QC policy (the one a batch's QC names)."""
    return select(Record.spec).where(
        Record.project_id == project_id,
        Record.kind == "policy",
        Record.name == "default",
        Record.version == str(version),
    )


def record_names(ids: list[str]) -> Select[str, str, str, str]:
    """(id, kind, name, version) of each of `ids`, for lists that name records without reading them."""
    return select(Record.id, Record.kind, Record.name, Record.version).where(Record.id.in_(ids))
