"""The database itself refuses UPDATE and DELETE on append-only tables (raw SQL, both databases)."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DatabaseError

from app.state import AppState
from tests.conftest import World
from tests.factories import criteria_body

STATEMENTS = [
    "UPDATE record SET name = 'changed' WHERE id = :id",
    "DELETE FROM record WHERE id = :id",
    "UPDATE record_edge SET role = 'x'",
    "DELETE FROM record_edge",
    # by `seq`: the first event exists whether or not the sequencer has given it its index yet
    "UPDATE audit_event SET actor = 'mallory' WHERE seq = (SELECT min(seq) FROM audit_event)",
    "DELETE FROM audit_event WHERE seq = (SELECT min(seq) FROM audit_event)",
    "UPDATE record_event SET type = 'x'",
]


@pytest.fixture
def record_id(world: World) -> str:
    project = world.project()
    world.admin.post(f"/v1/projects/{project}/criteria", json=criteria_body("1.0.0"))
    rec = world.admin.post(f"/v1/projects/{project}/criteria", json=criteria_body("1.1.0", playbook="v2")).json()
    return str(rec["id"])


@pytest.mark.parametrize("statement", STATEMENTS)
def test_raw_sql_changes_are_refused(stack: AppState, record_id: str, statement: str) -> None:
    _insert_edge_and_event(stack, record_id)
    with stack.sessions.engine.connect() as conn:
        with pytest.raises(DatabaseError, match="immutable_record"):
            conn.execute(text(statement), {"id": record_id})
        conn.rollback()
    with stack.sessions.read() as session:
        assert session.execute(text("SELECT name FROM record WHERE id = :id"), {"id": record_id}).scalar() == (
            "assistant-quality"
        )


def test_truncate_is_refused_on_postgres(postgres_stack: AppState) -> None:
    with postgres_stack.sessions.engine.connect() as conn:
        with pytest.raises(DatabaseError, match="immutable_record"):
            conn.execute(text("TRUNCATE record CASCADE"))
        conn.rollback()


def _insert_edge_and_event(stack: AppState, record_id: str) -> None:
    """Give record_edge and record_event a row so that row triggers have something to fire on."""
    with stack.sessions.engine.begin() as conn:
        conn.execute(
            text("INSERT INTO record_edge (child_id, parent_id, role) VALUES (:id, :id, :role)"),
            {"id": record_id, "role": f"self-{record_id[-6:]}"},
        )
        conn.execute(
            text(
                "INSERT INTO record_event (id, record_id, type, data, actor, created_at) "
                "VALUES (:eid, :id, 'note', '{}', 'test', CURRENT_TIMESTAMP)"
            ),
            {"eid": record_id[:-6] + "ffffff", "id": record_id},
        )
