"""Composable statements over records. No business rules here."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.access.models import Membership, Project
from app.records.models import Record, RecordSeries


def by_id(record_id: str) -> Select[Record]:
    return select(Record).where(Record.id == record_id)


RECORD_WITH_PROJECT_NAME: Select[Record, str] = (
    select(Record, Project.name).join(Project, Project.id == Record.project_id).where(Record.id == bindparam("id"))
)


def at_version(project_id: str, kind: str, name: str, version: str) -> Select[Record]:
    return select(Record).where(
        Record.project_id == project_id, Record.kind == kind, Record.name == name, Record.version == version
    )


def latest(project_id: str, kind: str, name: str) -> Select[Record]:
    return (
        select(Record)
        .where(Record.project_id == project_id, Record.kind == kind, Record.name == name)
        .order_by(Record.version_key.desc())
        .limit(1)
    )


def by_content(project_id: str, kind: str, name: str, content_digest: str) -> Select[Record]:
    return (
        select(Record)
        .where(
            Record.project_id == project_id,
            Record.kind == kind,
            Record.name == name,
            Record.content_digest == content_digest,
        )
        .order_by(Record.version_key)
        .limit(1)
    )


def page(project_id: str, kind: str, *, name: str | None, after_id: str | None, limit: int) -> Select[Record]:
    stmt = select(Record).where(Record.project_id == project_id, Record.kind == kind)
    if name is not None:
        stmt = stmt.where(Record.name == name)
    if after_id is not None:
        stmt = stmt.where(Record.id > after_id)
    return stmt.order_by(Record.id).limit(limit)


def lock_series(session: Session, project_id: str, kind: str, name: str) -> RecordSeries:
    """Create the series row if new, then lock it until the transaction ends.

    On PostgreSQL the row lock serialises registrations in one series; SQLite writers are serialised
    by BEGIN IMMEDIATE already."""
    values = {"project_id": project_id, "kind": kind, "name": name, "last_version": 0}
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(insert(RecordSeries).values(**values).on_conflict_do_nothing())
    stmt = (
        select(RecordSeries)
        .where(RecordSeries.project_id == project_id, RecordSeries.kind == kind, RecordSeries.name == name)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return session.execute(stmt).scalar_one()


# The columns a record is read with, as plain rows: the hot read routes (one record, a page of a list)
# serialise them straight to JSON without building ORM entities first.
READ_COLUMNS = (
    Record.id,
    Record.kind,
    Record.name,
    Record.version,
    Record.digest,
    Record.created_at,
    Record.created_by,
    Record.parents,
    Record.spec,
    Record.blobs,
    Record.derived,
)

# One record by id with its project's name and the principal's role there (NULL when it holds none).
RECORD_READ_BY_ID: Select[Any] = (
    select(*READ_COLUMNS, Project.name, Membership.role)
    .join(Project, Project.id == Record.project_id)
    .outerjoin(
        Membership,
        (Membership.project_id == Record.project_id) & (Membership.principal_id == bindparam("principal_id")),
    )
    .where(Record.id == bindparam("id"))
)


def read_page(*, by_name: bool, after: bool) -> Select[Any]:
    """A page of a collection in id order; binds project_id, kind, limit, and name and after_id when
    asked for. Four statements in all, built once each (building costs more than running on SQLite)."""
    return _READ_PAGES[by_name, after]


def _read_page(by_name: bool, after: bool) -> Select[Any]:
    stmt = select(*READ_COLUMNS).where(Record.project_id == bindparam("project_id"), Record.kind == bindparam("kind"))
    if by_name:
        stmt = stmt.where(Record.name == bindparam("name"))
    if after:
        stmt = stmt.where(Record.id > bindparam("after_id"))
    return stmt.order_by(Record.id).limit(bindparam("limit"))


_READ_PAGES = {(n, a): _read_page(n, a) for n in (False, True) for a in (False, True)}
