"""A registration runs as one unit of work in the thread pool: on SQLite it waits there for a held write
lock, never on the event loop, and stores once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from app.main import create_app
from app.state import AppState
from tests.conftest import World


@pytest.fixture(scope="module")
def sqlite_world(sqlite_stack: AppState) -> Iterator[World]:
    with TestClient(create_app(sqlite_stack.settings, state=sqlite_stack), raise_server_exceptions=False) as client:
        yield World(sqlite_stack, client)


def _in_thread(fn: Any) -> tuple[threading.Thread, dict[str, Any]]:
    box: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: box.update(result=fn()), daemon=True)
    thread.start()
    return thread, box


def test_a_registration_waits_for_a_held_write_lock_off_the_loop(sqlite_world: World) -> None:
    project = sqlite_world.project()
    holder = sqlite_world.state.sessions.write()
    holder.execute(text("SELECT 1"))  # BEGIN IMMEDIATE: this session now holds the write lock
    try:
        thread, box = _in_thread(
            lambda: sqlite_world.admin.post(f"/v1/projects/{project}/policies", json={"spec": {"kappa_floor": 0.3}})
        )
        time.sleep(0.5)
        assert thread.is_alive() and "result" not in box  # waiting for the lock
        probe, answer = _in_thread(lambda: sqlite_world.client.get("/healthz"))
        probe.join(5)
        assert answer["result"].status_code == 200  # the event loop is not blocked meanwhile
    finally:
        holder.commit()
        holder.close()
    thread.join(30)
    assert box["result"].status_code == 201, box["result"].text


def test_a_registration_runs_while_nothing_holds_the_lock(sqlite_world: World) -> None:
    project = sqlite_world.project()
    response = sqlite_world.admin.post(f"/v1/projects/{project}/policies", json={"spec": {"kappa_floor": 0.2}})
    assert response.status_code == 201, response.text
    again = sqlite_world.admin.post(f"/v1/projects/{project}/policies", json={"spec": {"kappa_floor": 0.2}})
    assert again.status_code == 200 and again.json()["id"] == response.json()["id"]
