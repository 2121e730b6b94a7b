"""Integer versions are assigned atomically: concurrent registrations never share or lose a version."""

from __future__ import annotations

import threading

from fastapi.testclient import TestClient

from app.main import create_app
from app.state import AppState
from tests.conftest import World

N = 20


def _fire(world: World, project: str, bodies: list[dict[str, object]]) -> list[tuple[int, dict[str, object]]]:
    barrier = threading.Barrier(len(bodies))
    results: list[tuple[int, dict[str, object]]] = []
    lock = threading.Lock()

    def register(body: dict[str, object]) -> None:
        barrier.wait()
        response = world.admin.post(f"/v1/projects/{project}/policies", json=body)
        with lock:
            results.append((response.status_code, response.json()))

    threads = [threading.Thread(target=register, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def test_twenty_concurrent_registrations_get_versions_1_to_20(postgres_stack: AppState) -> None:
    with TestClient(create_app(postgres_stack.settings, state=postgres_stack)) as client:
        world = World(postgres_stack, client)
        project = world.project()
        bodies: list[dict[str, object]] = [{"spec": {"gold_share_min": i / 100}} for i in range(N)]
        results = _fire(world, project, bodies)
    assert [status for status, _ in results] == [201] * N, results
    versions = sorted(int(str(body["version"])) for _, body in results)
    assert versions == list(range(1, N + 1))
    assert len({body["id"] for _, body in results}) == N


def test_concurrent_identical_registrations_collapse_to_one(stack: AppState) -> None:
    with TestClient(create_app(stack.settings, state=stack)) as client:
        world = World(stack, client)
        project = world.project()
        results = _fire(world, project, [{"spec": {"gold_share_min": 0.09}}] * 8)
    statuses = sorted(status for status, _ in results)
    assert statuses == [200] * 7 + [201]
    assert len({body["id"] for _, body in results}) == 1
