"""A registration costs a small, bounded number of queries, whatever is already stored."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from app.state import AppState
from tests.conftest import World
from tests.factories import criteria_body

BUDGET = 16


@contextmanager
def count_queries(state: AppState) -> Iterator[list[str]]:
    statements: list[str] = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(state.sessions.engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        event.remove(state.sessions.engine, "before_cursor_execute", before)


def _register_policy(world: World, project: str, i: int) -> None:
    response = world.admin.post(f"/v1/projects/{project}/policies", json={"spec": {"gold_share_min": i / 1000}})
    assert response.status_code == 201


def test_registration_query_count_does_not_grow(world: World, stack: AppState) -> None:
    project = world.project()
    _register_policy(world, project, 0)
    with count_queries(stack) as few:
        _register_policy(world, project, 1)
    for i in range(2, 60):
        _register_policy(world, project, i)
    with count_queries(stack) as many:
        _register_policy(world, project, 999)
    assert len(few) == len(many) <= BUDGET, many


def test_criteria_registration_is_bounded(world: World, stack: AppState) -> None:
    project = world.project()
    world.admin.post(f"/v1/projects/{project}/criteria", json=criteria_body("1.0.0"))
    with count_queries(stack) as statements:
        response = world.admin.post(f"/v1/projects/{project}/criteria", json=criteria_body("1.1.0", playbook="x"))
    assert response.status_code == 201
    assert len(statements) <= BUDGET, statements
