"""The hot read paths, one record by id and a page of a collection, as plain rows.

Both run on every dashboard refresh and client poll. They select columns rather than ORM entities and
hand plain dicts to pydantic, whose Rust core validates and serialises a `RecordRead` in one step:
building ORM entities and then models cost more than the queries themselves (bench/api.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection

from app.access.service import Identity
from app.core.errors import NotFound
from app.records import repository

_FIELDS = ("id", "kind", "name", "version", "digest", "created_at", "created_by", "parents", "spec", "blobs", "derived")


def as_read(row: Sequence[Any], project: str) -> dict[str, Any]:
    """The `RecordRead` fields of a row of `repository.READ_COLUMNS`."""
    read = dict(zip(_FIELDS, row, strict=False))
    read["project"] = project
    return read


def as_read_fields(columns: dict[str, Any], project: str) -> dict[str, Any]:
    """The `RecordRead` fields of a record's columns."""
    return as_read([columns[field] for field in _FIELDS], project)


def record_by_id(conn: Connection, actor: Identity, record_id: str) -> dict[str, Any]:
    """A record the principal may see (404 otherwise, the same answer as for an unknown id)."""
    row = conn.execute(repository.RECORD_READ_BY_ID, {"id": record_id, "principal_id": actor.id}).first()
    if row is None or (row[-1] is None and not actor.is_global_admin):
        raise NotFound(f"record {record_id} not found")
    return as_read(row, row[-2])


def page(
    conn: Connection, project_id: str, project: str, kind: str, *, name: str | None, after_id: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """Up to `limit` records in id order after `after_id`, and the id to continue after (None at the end)."""
    stmt = repository.read_page(by_name=name is not None, after=after_id is not None)
    params: dict[str, Any] = {"project_id": project_id, "kind": kind, "limit": limit + 1}
    if name is not None:
        params["name"] = name
    if after_id is not None:
        params["after_id"] = after_id
    rows = conn.execute(stmt, params).all()
    if len(rows) > limit:
        return [as_read(r, project) for r in rows[:limit]], rows[limit - 1][0]
    return [as_read(r, project) for r in rows], None
