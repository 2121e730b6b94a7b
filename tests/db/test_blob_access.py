"""Who may read which blobs is answered for a whole folder in a few statements that seek indexes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, insert, select

from app.access.models import Principal
from app.access.service import Actor
from app.blobs import service
from app.blobs.models import Blob, BlobUploader
from app.state import AppState
from tests.conftest import World

FOLDER = 2 * service.DIGESTS_PER_STATEMENT + 17


@contextmanager
def statements(state: AppState) -> Iterator[list[tuple[str, Any]]]:
    seen: list[tuple[str, Any]] = []

    def before(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        # the blob lookups only: a background loop of the app may run its own statements meanwhile
        if statement.lstrip().upper().startswith("SELECT") and "FROM blob" in statement:
            seen.append((statement, parameters))

    event.listen(state.sessions.engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        event.remove(state.sessions.engine, "before_cursor_execute", before)


def _actor(state: AppState, name: str) -> Actor:
    with state.sessions.read() as session:
        row = session.execute(select(Principal.id, Principal.is_global_admin).where(Principal.name == name)).one()
    return Actor(id=row[0], name=name, is_global_admin=row[1])


@pytest.fixture
def uploaded(world: World) -> tuple[Actor, list[str]]:
    """A principal that uploaded a folder of `FOLDER` blobs (rows written directly: the store is not read)."""
    uploader = _actor(world.state, world.principal().principal)
    digests = ["sha256:" + os.urandom(32).hex() for _ in range(FOLDER)]
    uow = world.state.unit_of_work(request_id="test")
    try:
        uow.session.execute(insert(Blob), [{"digest": d, "size": i} for i, d in enumerate(digests)])
        uow.session.execute(insert(BlobUploader), [{"digest": d, "principal_id": uploader.id} for d in digests])
        uow.commit()
    finally:
        uow.close()
    return uploader, digests


def test_a_folder_is_answered_in_a_few_statements(world: World, uploaded: tuple[Actor, list[str]]) -> None:
    uploader, digests = uploaded
    stranger = _actor(world.state, world.principal().principal)
    unknown = ["sha256:" + os.urandom(32).hex() for _ in range(3)]
    with world.state.sessions.read() as session, statements(world.state) as seen:
        mine = service.readable_sizes(session, uploader, [*digests, *unknown])
        theirs = service.readable_sizes(session, stranger, digests)
    assert mine == {d: i for i, d in enumerate(digests)}
    assert theirs == {}
    assert len(seen) == 2 * 3  # ceil(FOLDER / DIGESTS_PER_STATEMENT) each


def test_a_global_admin_reads_every_stored_blob(world: World, uploaded: tuple[Actor, list[str]]) -> None:
    _, digests = uploaded
    admin = _actor(world.state, world.admin.principal)
    with world.state.sessions.read() as session:
        assert len(service.readable_sizes(session, admin, [*digests[:10], "sha256:" + "0" * 64])) == 10


def test_the_readability_statement_seeks_indexes(sqlite_stack: AppState) -> None:
    reader = Actor(id="p", name="p", is_global_admin=False)
    with sqlite_stack.sessions.read() as session, statements(sqlite_stack) as seen:
        service.readable_sizes(session, reader, ["sha256:" + "1" * 64, "sha256:" + "2" * 64])
        [(statement, parameters)] = seen
        plan = " | ".join(
            str(row[-1]) for row in session.connection().exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
        )
    assert "SCAN" not in plan and "TEMP B-TREE" not in plan, plan
    for index in ("blob", "blob_uploader", "record_blob", "record", "membership"):
        assert f"SEARCH {index} USING" in plan, plan
