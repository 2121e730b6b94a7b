"""`Prepared` statements (run on the driver's connection) read and write exactly what SQLAlchemy's own
execution of the same statements reads and writes, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import bindparam, event, select

from app.access import repository as access_repository
from app.access.models import Project
from app.core.ids import uuid7
from app.core.prepared import Prepared
from app.core.security import hash_token
from app.records import repository
from app.records.models import Record
from app.state import AppState
from tests.conftest import World

SPEC = {"text": "naïve — 日本 \U0001f600", "ratio": 0.1 + 0.2, "big": 2**60, "nested": [{"a": None}, True, 1.5e-7]}


def _registered(world: World) -> tuple[str, str, dict[str, Any]]:
    project = world.project()
    response = world.admin.post(f"/v1/projects/{project}/policies", json={"spec": {"kappa_floor": 0.25}})
    assert response.status_code == 201, response.text
    with world.state.sessions.read() as session:
        project_id = session.scalars(select(Project.id).where(Project.name == project)).one()
    return project, project_id, response.json()


def test_reads_match_sqlalchemys(world: World, stack: AppState) -> None:
    project, project_id, record = _registered(world)
    series = repository.series(project_id, "policy", "default")
    cases: list[tuple[Any, Prepared, dict[str, Any]]] = [
        (repository.RECORD_READ_BY_ID, repository.RECORD_READ, {"id": record["id"], "principal_id": "nobody"}),
        (
            access_repository.PRINCIPAL_BY_TOKEN_HASH,
            access_repository.PRINCIPAL_BY_TOKEN,
            {"token_hash": hash_token(world.admin.token)},
        ),
        (
            access_repository.PROJECT_ID_WITH_ROLE,
            access_repository.PROJECT_ID_AND_ROLE,
            {"name": project, "principal_id": "nobody"},
        ),
        (repository.LATEST_VERSION_AND_SPEC, repository.POLICY_VERSION_AND_SPEC, series),
        (repository.ID_BY_CONTENT, repository.FIRST_ID_BY_CONTENT, {**series, "content_digest": "sha256:none"}),
    ]
    for by_name in (False, True):
        for after in (False, True):
            params = {**series, "limit": 5, "after_id": "0" if after else None}
            cases.append(
                (
                    repository.read_page(by_name=by_name, after=after),
                    repository.prepared_page(by_name=by_name, after=after),
                    params,
                )
            )
    with stack.sessions.read() as session:
        conn = session.connection()
        for statement, prepared, params in cases:
            expected = [tuple(row) for row in conn.execute(statement, params)]
            assert prepared.all(conn, params) == expected, statement
            assert prepared.first(conn, params) == (expected[0] if expected else None)
    found = repository.RECORD_READ.first(stack.sessions.read().connection(), {"id": record["id"], "principal_id": "x"})
    assert found is not None and isinstance(found[5], datetime) and found[5].tzinfo is not None


def test_an_insert_stores_what_sqlalchemys_stores(world: World, stack: AppState) -> None:
    _, project_id, _ = _registered(world)
    at = datetime(2026, 12, 6, 15, 30, 1, 123456, tzinfo=UTC)
    row = {
        "kind": "policy",
        "project_id": project_id,
        "name": "parity",
        "version": "1",
        "version_key": "1",
        "digest": "sha256:" + "a" * 64,
        "content_digest": "sha256:" + "b" * 64,
        "created_at": at,
        "created_by": "tester",
        "parents": [{"id": "x", "role": "r"}],
        "spec": SPEC,
        "blobs": [],
        "derived": {"n": 3, "share": 0.5},
    }
    ours, theirs = uuid7(), uuid7()
    with stack.sessions.write() as session:
        conn = session.connection()
        repository.ADD_RECORD.execute(conn, {**row, "id": ours})
        conn.execute(repository.INSERT_RECORD, {**row, "id": theirs, "name": "parity-sa"})
        stored = {
            r.id: {c.key: getattr(r, c.key) for c in Record.__table__.columns}
            for r in session.scalars(select(Record).where(Record.id.in_([ours, theirs])))
        }
        raw = {
            r[0]: r[1:]
            for r in conn.execute(
                select(Record.id, Record.spec, Record.created_at).where(Record.id.in_([ours, theirs]))
            )
        }
        session.rollback()
    assert set(stored) == {ours, theirs}
    for column in Record.__table__.columns:
        if column.key not in ("id", "name"):
            assert stored[ours][column.key] == stored[theirs][column.key], column.key
    assert stored[ours]["spec"] == SPEC and stored[ours]["created_at"] == at
    assert raw[ours] == raw[theirs]


def test_a_rolled_back_prepared_write_leaves_nothing(world: World, stack: AppState) -> None:
    _, project_id, _ = _registered(world)
    series = {"project_id": project_id, "kind": "policy", "name": "rolled-back"}
    with stack.sessions.write() as session:
        assert repository.lock_series(session.connection(), **series) == 0
        repository.set_last_version(session.connection(), **series, version=7)
        assert repository.lock_series(session.connection(), **series) == 7
        session.rollback()
    with stack.sessions.write() as session:
        assert repository.lock_series(session.connection(), **series) == 0
        session.rollback()


def test_statement_listeners_see_prepared_statements(world: World, stack: AppState) -> None:
    _, project_id, _ = _registered(world)
    seen: list[tuple[str, bool]] = []

    def listener(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        seen.append((statement, many))

    event.listen(stack.sessions.engine, "before_cursor_execute", listener)
    try:
        with stack.sessions.read() as session:
            repository.POLICY_VERSION_AND_SPEC.first(
                session.connection(), repository.series(project_id, "policy", "default")
            )
    finally:
        event.remove(stack.sessions.engine, "before_cursor_execute", listener)
    assert any("FROM record" in statement and not many for statement, many in seen), seen


def test_statements_it_cannot_run_are_refused(stack: AppState) -> None:
    expanding = Prepared(select(Record.id).where(Record.id.in_(bindparam("ids", expanding=True))))
    with pytest.raises(ValueError, match="expanding"):
        expanding.plan(stack.sessions.engine.dialect)
    computed = Prepared(select(Record.id).where(Record.name == bindparam("name", callable_=lambda: "x")))
    with pytest.raises(ValueError, match="callable"):
        computed.plan(stack.sessions.engine.dialect)


def test_driver_errors_are_raised_as_sqlalchemys(world: World, stack: AppState) -> None:
    """The API answers a concurrent conflicting write with 409 and a database outage with 503 by
    SQLAlchemy's exception classes; a prepared statement raises those too."""
    from sqlalchemy.exc import IntegrityError

    _, project_id, record = _registered(world)
    series = repository.series(project_id, "policy", "default")
    row = {
        **series,
        "id": record["id"],  # taken
        "version": "99",
        "version_key": "99",
        "digest": "sha256:" + "c" * 64,
        "content_digest": "sha256:" + "d" * 64,
        "created_at": datetime.now(UTC),
        "created_by": "t",
        "parents": [],
        "spec": {},
        "blobs": [],
        "derived": {},
    }
    for params in (row, [row]):  # one row, and executemany
        with stack.sessions.write() as session:
            with pytest.raises(IntegrityError):
                repository.ADD_RECORD.execute(session.connection(), params)
            session.rollback()
