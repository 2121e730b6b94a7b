"""A model folder registers whatever its size up to `max_folder_files`, is refused beyond it, and names
a file path a client could not safely write."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.state import AppState
from tests.conftest import Api, World


@pytest.fixture
def trainer(world: World) -> tuple[Api, str]:
    project = world.project()
    return world.member(project, "trainer"), project


def _files(api: Api, n: int) -> list[dict[str, Any]]:
    """`n` files of one uploaded blob (many small identical files, as shards of zeros or empty ones)."""
    data = os.urandom(64)
    digest = api.post("/v1/blobs", content=data).json()["digest"]
    return [{"path": f"shards/{i // 1000:03d}/part-{i:06d}.bin", "digest": digest, "size": len(data)} for i in range(n)]


def test_a_25000_file_base_model_registers(trainer: tuple[Api, str]) -> None:
    api, project = trainer
    files = _files(api, 25_000)
    response = api.post(f"/v1/projects/{project}/base-models", json={"name": "wide", "spec": {"files": files}})
    assert response.status_code == 201, response.text[:500]
    assert response.json()["derived"]["file_count"] == 25_000


FOLDER_LIMIT = 10


@pytest.fixture
def limited(stack: AppState) -> Iterator[tuple[Api, str]]:
    """A trainer on an app of its own over the stack, built with settings allowing `FOLDER_LIMIT` files
    a folder: the app's settings, not the process environment, hold the limit."""
    state = dataclasses.replace(stack, settings=stack.settings.model_copy(update={"max_folder_files": FOLDER_LIMIT}))
    with TestClient(create_app(state=state), raise_server_exceptions=False) as client:
        world = World(state, client)
        project = world.project()
        yield world.member(project, "trainer"), project


@pytest.mark.parametrize("collection", ["base-models", "reward-checkpoints"])
def test_a_folder_over_the_limit_is_refused_naming_it(limited: tuple[Api, str], collection: str) -> None:
    api, project = limited
    folder_limit = FOLDER_LIMIT
    files = _files(api, folder_limit + 1)
    response = api.post(f"/v1/projects/{project}/{collection}", json={"name": "big", "spec": {"files": files}})
    assert response.status_code == 422 and response.json()["code"] == "validation_failed"
    assert any(
        err["loc"][:3] == ["body", "spec", "files"] and f"at most {folder_limit} files" in err["msg"]
        for err in response.json()["errors"]
    ), response.text
    within = api.post(
        f"/v1/projects/{project}/base-models", json={"name": "small", "spec": {"files": files[:folder_limit]}}
    )
    assert within.status_code == 201, within.text


def test_the_file_count_is_checked_before_the_files(limited: tuple[Api, str]) -> None:
    """Entries that are not files at all, over the limit: one error, for the count (no entry was read)."""
    api, project = limited
    body = {"name": "junk", "spec": {"files": [{}] * (FOLDER_LIMIT + 1)}}
    response = api.post(f"/v1/projects/{project}/base-models", json=body)
    assert response.status_code == 422 and response.json()["code"] == "validation_failed"
    assert [err["loc"] for err in response.json()["errors"]] == [["body", "spec", "files"]]


@pytest.mark.parametrize("path", ["weights\x00.bin", "conf\x1big.json", "C:model.bin", "~/model.bin"])
def test_unsafe_file_paths_are_refused_naming_the_path(trainer: tuple[Api, str], path: str) -> None:
    api, project = trainer
    files = [{**_files(api, 1)[0], "path": path}]
    response = api.post(f"/v1/projects/{project}/base-models", json={"name": "bad", "spec": {"files": files}})
    assert response.status_code == 422 and response.json()["code"] == "validation_failed"
    [error] = response.json()["errors"]
    assert error["loc"] == ["body", "spec", "files", 0, "path"] and repr(path) in error["msg"]
    assert api.get(f"/v1/projects/{project}/base-models/bad/latest").status_code == 404
