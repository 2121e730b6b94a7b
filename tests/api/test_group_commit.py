"""SQLite group commit: quick registrations ready in the same turn of the event loop share one write
transaction, each in a savepoint of its own, and none answers before the commit."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import Connection, event, text

from app.core.group_commit import GroupCommit
from app.main import create_app
from app.state import AppState
from tests.conftest import World, unique
from tests.factories import criteria_body


@pytest.fixture
def commits(sqlite_stack: AppState) -> Any:
    seen: list[int] = []

    def on_commit(conn: Any) -> None:
        seen.append(1)

    event.listen(sqlite_stack.sessions.engine, "commit", on_commit)
    yield seen
    event.remove(sqlite_stack.sessions.engine, "commit", on_commit)


def _post_all(state: AppState, token: str, posts: list[tuple[str, dict[str, Any]]]) -> list[httpx.Response]:
    """Send every POST at once from one event loop, the app in the same loop (as under load)."""
    app = create_app(state.settings, state=state)

    async def go() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            headers = {"Authorization": f"Bearer {token}"}
            return await asyncio.gather(*(client.post(path, json=body, headers=headers) for path, body in posts))

    return asyncio.run(go())


@pytest.fixture
def sqlite_world(sqlite_stack: AppState) -> World:
    from fastapi.testclient import TestClient

    return World(sqlite_stack, TestClient(create_app(sqlite_stack.settings, state=sqlite_stack)))


def test_concurrent_registrations_share_commits_and_all_land(sqlite_world: World, commits: list[int]) -> None:
    project = sqlite_world.project()
    n = 24
    posts = [(f"/v1/projects/{project}/policies", {"spec": {"kappa_floor": i / 100}}) for i in range(n)]
    responses = _post_all(sqlite_world.state, sqlite_world.admin.token, posts)
    assert [r.status_code for r in responses] == [201] * n, [r.text for r in responses if r.status_code != 201]
    assert sorted(int(r.json()["version"]) for r in responses) == list(range(1, n + 1))
    assert len(commits) < n  # fewer commits than registrations: they were grouped
    listed = sqlite_world.admin.get(f"/v1/projects/{project}/policies?limit=100").json()["items"]
    assert {r["id"] for r in listed} == {r.json()["id"] for r in responses}
    assert sqlite_world.admin.get("/v1/audit/verify").json()["ok"] is True


def test_a_failing_unit_rolls_back_alone(sqlite_world: World) -> None:
    project = sqlite_world.project()
    assert sqlite_world.admin.post(f"/v1/projects/{project}/criteria", json=criteria_body("2.0.0")).status_code == 201
    policies = f"/v1/projects/{project}/policies"
    posts = [
        (policies, {"spec": {"kappa_floor": 0.1}}),
        (f"/v1/projects/{project}/criteria", criteria_body("1.0.0")),  # too low: refused after its series lock
        (f"/v1/projects/{project}/criteria", criteria_body("1.0.0", name=unique("fresh"))),
        (policies, {"spec": {"kappa_floor": "not a number"}}),  # 422
        (policies, {"spec": {"kappa_floor": 0.2}}),
    ]
    codes = [r.status_code for r in _post_all(sqlite_world.state, sqlite_world.admin.token, posts)]
    assert codes == [201, 409, 201, 422, 201], codes
    versions = [r["version"] for r in sqlite_world.admin.get(f"{policies}?limit=10").json()["items"]]
    assert versions == ["1", "2"]
    criteria = sqlite_world.admin.get(f"/v1/projects/{project}/criteria?limit=10").json()["items"]
    assert sorted(r["version"] for r in criteria) == ["1.0.0", "2.0.0"]
    assert sqlite_world.admin.get("/v1/audit/verify").json()["ok"] is True


def _scratch_table(state: AppState) -> str:
    """A new table of this test's own: id, and parent referring to another row (a foreign key)."""
    table = unique("t").replace("-", "_")
    with state.sessions.engine.begin() as conn:
        conn.execute(text(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, parent INTEGER REFERENCES {table}(id))"))
    return table


def test_a_failed_commit_fails_every_unit_of_the_group_and_stores_nothing(sqlite_stack: AppState) -> None:
    """A real commit failure: a deferred foreign key one unit broke is checked at COMMIT."""
    table = _scratch_table(sqlite_stack)
    group = GroupCommit(lambda: sqlite_stack.sessions.write_connection(nowait=True))
    after: list[str] = []

    def good(conn: Connection) -> tuple[str, list[Any]]:
        conn.exec_driver_sql(f"INSERT INTO {table} (id, parent) VALUES (1, NULL)")
        return "good", [lambda: after.append("good")]

    def breaks_at_commit(conn: Connection) -> tuple[str, list[Any]]:
        conn.exec_driver_sql("PRAGMA defer_foreign_keys=ON")
        conn.exec_driver_sql(f"INSERT INTO {table} (id, parent) VALUES (2, 999)")
        return "bad", []

    async def go() -> list[Any]:
        return await asyncio.gather(group.run(good), group.run(breaks_at_commit), return_exceptions=True)

    results = asyncio.run(go())
    assert all(isinstance(r, Exception) and "FOREIGN KEY" in str(r) for r in results), results
    assert after == []
    with sqlite_stack.sessions.engine.connect() as conn:
        assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar() == 0


def test_callbacks_run_after_the_commit_and_answers_wait_for_it(sqlite_stack: AppState) -> None:
    table = _scratch_table(sqlite_stack)
    group = GroupCommit(lambda: sqlite_stack.sessions.write_connection(nowait=True))
    visible_in_callback: list[int] = []

    def count() -> int:
        with sqlite_stack.sessions.engine.connect() as other:
            return int(other.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())

    def unit(i: int) -> Any:
        def run(conn: Connection) -> tuple[int, list[Any]]:
            conn.exec_driver_sql(f"INSERT INTO {table} (id, parent) VALUES ({i}, NULL)")
            return i, [lambda: visible_in_callback.append(count())]

        return run

    async def go() -> tuple[list[int], int]:
        results = await asyncio.gather(*(group.run(unit(i)) for i in range(5)))
        return results, count()

    results, stored = asyncio.run(go())
    assert results == [0, 1, 2, 3, 4] and stored == 5
    assert visible_in_callback == [5] * 5  # each callback ran once all five were committed


def test_a_failed_commit_leaves_no_transaction_open_behind(sqlite_stack: AppState) -> None:
    """Outside a group too: SQLite keeps a transaction open after a failed COMMIT; the connection must
    not go back to the pool that way (the next writer would find the write lock held)."""
    from app.core.uow import UnitOfWork

    table = _scratch_table(sqlite_stack)
    for _ in range(3):  # enough to reuse a pooled connection
        with sqlite_stack.sessions.write_connection() as conn:
            uow = UnitOfWork.on_connection(conn, request_id="t", audit_sink=sqlite_stack.audit)
            conn.exec_driver_sql("PRAGMA defer_foreign_keys=ON")
            conn.exec_driver_sql(f"INSERT INTO {table} (id, parent) VALUES (1, 999)")
            with pytest.raises(Exception, match="FOREIGN KEY"):
                uow.commit()
            uow.rollback()
            uow.close()
    with sqlite_stack.sessions.write_connection(nowait=True) as conn:
        uow = UnitOfWork.on_connection(conn, request_id="t", audit_sink=sqlite_stack.audit)  # no WriterBusy
        conn.exec_driver_sql(f"INSERT INTO {table} (id, parent) VALUES (1, NULL)")
        uow.commit()
    with sqlite_stack.sessions.engine.connect() as conn:
        assert conn.execute(text(f"SELECT count(*) FROM {table}")).scalar() == 1


def test_a_failed_orm_flush_in_a_group_rolls_back_only_its_unit(sqlite_stack: AppState) -> None:
    """A unit's ORM session works in a savepoint of its own inside the group's transaction: a flush that
    fails (a foreign key here) must not roll back the other units of the group."""
    from app.core.uow import UnitOfWork
    from app.records.models import RecordEdge

    table = _scratch_table(sqlite_stack)
    group = GroupCommit(lambda: sqlite_stack.sessions.write_connection(nowait=True))

    def unit(i: int, *, broken: bool) -> Any:
        def run(conn: Connection) -> tuple[int, list[Any]]:
            uow = UnitOfWork.on_connection(conn, request_id=f"r{i}", audit_sink=sqlite_stack.audit, savepoint=True)
            try:
                conn.exec_driver_sql(f"INSERT INTO {table} (id, parent) VALUES ({i}, NULL)")
                uow.audit(actor="t", action="test.unit", target=f"{table}:{i}", project=None, payload={"i": i})
                if broken:
                    uow.session.add(RecordEdge(child_id=unique("no"), parent_id=unique("such"), role="x"))
                    try:
                        uow.session.flush()
                    finally:
                        uow.session.rollback()  # what a caller may do after a failed flush
                uow.commit()
                return i, uow.after_outer_commit
            except BaseException:
                uow.rollback()
                raise
            finally:
                uow.close()

        return run

    async def go() -> list[Any]:
        units = [unit(1, broken=False), unit(2, broken=True), unit(3, broken=False)]
        return await asyncio.gather(*(group.run(u) for u in units), return_exceptions=True)

    results = asyncio.run(go())
    assert results[0] == 1 and results[2] == 3, results
    assert isinstance(results[1], Exception) and "FOREIGN KEY" in str(results[1]), results
    with sqlite_stack.sessions.engine.connect() as conn:
        assert [r[0] for r in conn.execute(text(f"SELECT id FROM {table} ORDER BY id"))] == [1, 3]
        targets = {r[0] for r in conn.execute(text("SELECT target FROM audit_event WHERE action = 'test.unit'"))}
    assert {f"{table}:1", f"{table}:3"} <= targets and f"{table}:2" not in targets


def test_a_unit_that_ends_the_shared_transaction_fails_its_group_and_no_write_escapes(sqlite_stack: AppState) -> None:
    """If a unit rolls the whole transaction back, the units before it in the group must not answer
    as stored, and the units after it must not write outside a transaction: they start a new group."""
    table = _scratch_table(sqlite_stack)
    group = GroupCommit(lambda: sqlite_stack.sessions.write_connection(nowait=True))

    def insert(i: int) -> Any:
        def run(conn: Connection) -> tuple[int, list[Any]]:
            conn.exec_driver_sql(f"INSERT INTO {table} (id, parent) VALUES ({i}, NULL)")
            return i, []

        return run

    def ends_it(conn: Connection) -> tuple[int, list[Any]]:
        conn.rollback()
        return 0, []

    async def go() -> list[Any]:
        units = [insert(1), ends_it, insert(3)]
        return await asyncio.gather(*(group.run(u) for u in units), return_exceptions=True)

    results = asyncio.run(go())
    assert isinstance(results[0], Exception) and "rolled back" in str(results[0]), results
    assert isinstance(results[1], Exception), results
    assert results[2] == 3, results
    with sqlite_stack.sessions.engine.connect() as conn:
        assert [r[0] for r in conn.execute(text(f"SELECT id FROM {table} ORDER BY id"))] == [3]


def test_a_write_that_would_wait_for_the_loops_own_lock_fails_at_once(sqlite_stack: AppState) -> None:
    """While a group is open the loop's thread holds the write lock; a write that begins on that thread
    and waits for the lock would wait for itself (a minute, the loop frozen): it fails at once."""
    from app.core.db import WriterBusy

    group = GroupCommit(lambda: sqlite_stack.sessions.write_connection(nowait=True))

    def nested_write(conn: Connection) -> tuple[str, list[Any]]:
        with sqlite_stack.sessions.write() as session, pytest.raises(WriterBusy, match="wait for itself"):
            session.connection()
        return "refused", []

    async def go() -> str:
        return await group.run(nested_write)

    assert asyncio.run(go()) == "refused"
