"""Composable statements over records. No business rules here."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Select, bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from app.access.models import Membership, Project
from app.records.models import Record, RecordSeries

# a record by :id (a registration resolves each reference it cites with it)
BY_ID: Select[Record] = select(Record).where(Record.id == bindparam("id"))


RECORD_WITH_PROJECT_NAME: Select[Record, str] = (
    select(Record, Project.name).join(Project, Project.id == Record.project_id).where(Record.id == bindparam("id"))
)


# The registration pipeline's statements, built once with bind parameters (project_id, kind, name and
# the one that varies): a registration runs a dozen statements, and on SQLite building a select costs
# more than running it.
_SERIES = (
    Record.project_id == bindparam("project_id"),
    Record.kind == bindparam("kind"),
    Record.name == bindparam("name"),
)
AT_VERSION: Select[Record] = select(Record).where(*_SERIES, Record.version == bindparam("version"))
LATEST: Select[Record] = select(Record).where(*_SERIES).order_by(Record.version_key.desc()).limit(1)
# the id of the first version of a series with this content (the idempotency check of every
# registration without a declared version)
ID_BY_CONTENT: Select[str] = (
    select(Record.id)
    .where(*_SERIES, Record.content_digest == bindparam("content_digest"))
    .order_by(Record.version_key)
    .limit(1)
)
# the latest version and spec of a series, as a plain row (the project's policy, read by every registration)
LATEST_VERSION_AND_SPEC: Select[str, dict[str, Any]] = (
    select(Record.version, Record.spec).where(*_SERIES).order_by(Record.version_key.desc()).limit(1)
)
INSERT_RECORD = insert(Record.__table__)  # type: ignore[arg-type]  # a Table, whatever mypy reads


def series(project_id: str, kind: str, name: str, **more: str) -> dict[str, str]:
    """The bind parameters of the statements above."""
    return {"project_id": project_id, "kind": kind, "name": name, **more}


def _series_upsert(insert: Any) -> Any:
    """INSERT the series row or, when it exists, a no-op UPDATE of it, returning its last version: one
    statement that creates the row and (on PostgreSQL) takes the row lock that serialises registrations
    in one series. SQLite writers are serialised by BEGIN IMMEDIATE already."""
    table = RecordSeries.__table__
    stmt = insert(table).values(
        project_id=bindparam("project_id"), kind=bindparam("kind"), name=bindparam("name"), last_version=0
    )
    return stmt.on_conflict_do_update(
        index_elements=[table.c.project_id, table.c.kind, table.c.name],
        set_={"last_version": table.c.last_version},
    ).returning(table.c.last_version)


_SERIES_UPSERTS = {"postgresql": _series_upsert(postgresql.insert), "sqlite": _series_upsert(sqlite.insert)}
_SET_LAST_VERSION = (
    update(RecordSeries)
    .where(
        RecordSeries.project_id == bindparam("s_project_id"),
        RecordSeries.kind == bindparam("s_kind"),
        RecordSeries.name == bindparam("s_name"),
    )
    .values(last_version=bindparam("s_last_version"))
)


def lock_series(conn: Connection, project_id: str, kind: str, name: str) -> int:
    """Create the series row if new, lock it until the transaction ends, and return its last version."""
    params = {"project_id": project_id, "kind": kind, "name": name}
    return int(conn.execute(_SERIES_UPSERTS[conn.dialect.name], params).scalar_one())


def set_last_version(conn: Connection, project_id: str, kind: str, name: str, version: int) -> None:
    params = {"s_project_id": project_id, "s_kind": kind, "s_name": name, "s_last_version": version}
    conn.execute(_SET_LAST_VERSION, params)


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
    asked for. Four statements in all, built once each."""
    return _READ_PAGES[by_name, after]


def _read_page(by_name: bool, after: bool) -> Select[Any]:
    stmt = select(*READ_COLUMNS).where(Record.project_id == bindparam("project_id"), Record.kind == bindparam("kind"))
    if by_name:
        stmt = stmt.where(Record.name == bindparam("name"))
    if after:
        stmt = stmt.where(Record.id > bindparam("after_id"))
    return stmt.order_by(Record.id).limit(bindparam("limit"))


_READ_PAGES = {(n, a): _read_page(n, a) for n in (False, True) for a in (False, True)}
