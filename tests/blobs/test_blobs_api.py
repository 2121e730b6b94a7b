"""POST /v1/blobs streams to the store while hashing; a wrong X-Content-SHA256 stores nothing."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections.abc import Iterator

from app.state import AppState
from tests.conftest import World


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_upload_and_download_round_trip(world: World) -> None:
    project = world.project()
    uploader = world.member(project, "trainer")
    data = os.urandom(3 * 1024 * 1024 + 17)
    response = uploader.post("/v1/blobs", content=data, headers={"X-Content-SHA256": _digest(data)})
    assert response.status_code == 201, response.text
    assert response.json() == {"digest": _digest(data), "size": len(data)}
    again = uploader.post("/v1/blobs", content=data)
    assert again.status_code == 200 and again.json()["digest"] == _digest(data)
    download = uploader.get(f"/v1/blobs/{_digest(data)}")
    assert download.status_code == 200 and download.content == data
    assert download.headers["etag"] == f'"{_digest(data)}"'
    head = uploader.request("HEAD", f"/v1/blobs/{_digest(data)}")
    assert head.status_code == 200 and head.headers["content-length"] == str(len(data))


def test_chunked_upload_without_content_length(world: World) -> None:
    project = world.project()
    uploader = world.member(project, "annotator")
    parts = [os.urandom(100_000) for _ in range(25)]

    def body() -> Iterator[bytes]:
        yield from parts

    response = uploader.post("/v1/blobs", content=body())
    assert response.status_code == 201
    assert response.json()["digest"] == _digest(b"".join(parts))


def test_digest_mismatch_stores_nothing(world: World, stack: AppState) -> None:
    project = world.project()
    uploader = world.member(project, "trainer")
    data = b"the real bytes " + os.urandom(64)
    claimed = _digest(b"something else")
    response = uploader.post("/v1/blobs", content=data, headers={"X-Content-SHA256": claimed})
    assert response.status_code == 400
    problem = response.json()
    assert problem["code"] == "digest_mismatch" and problem["actual"] == _digest(data)
    assert not stack.blobs.exists(_digest(data)) and not stack.blobs.exists(claimed)
    assert uploader.get(f"/v1/blobs/{_digest(data)}").status_code == 404


def test_bare_hex_header_accepted_and_bad_header_refused(world: World) -> None:
    project = world.project()
    uploader = world.member(project, "trainer")
    data = os.urandom(100)
    ok = uploader.post("/v1/blobs", content=data, headers={"X-Content-SHA256": hashlib.sha256(data).hexdigest()})
    assert ok.status_code == 201
    bad = uploader.post("/v1/blobs", content=data, headers={"X-Content-SHA256": "md5:abc"})
    assert bad.status_code == 422 and bad.json()["code"] == "validation_failed"


def test_upload_is_audited(world: World) -> None:
    data = os.urandom(50)
    size = world.admin.get("/v1/audit/verify").json()["tree_size"]
    world.admin.post("/v1/blobs", content=data)
    events = world.admin.get("/v1/audit", params={"cursor": str(size - 1)}).json()["items"]
    assert any(e["action"] == "blob.uploaded" and e["target"] == f"blob:{_digest(data)}" for e in events)


def test_blob_limit(stack: AppState) -> None:
    from fastapi.testclient import TestClient

    from app.main import create_app

    settings = stack.settings.model_copy(update={"max_blob_bytes": 1000})
    with TestClient(create_app(state=dataclasses.replace(stack, settings=settings))) as client:
        world = World(stack, client)
        response = world.admin.post("/v1/blobs", content=os.urandom(5000))
    assert response.status_code == 413 and response.json()["code"] == "payload_too_large"
