"""Blob store outages as clients see them: 503 `unavailable` with Retry-After, never a 500 or a response
that starts and then stops short.

The S3 tests run the API (uvicorn, real HTTP) over a SeaweedFS of their own, which they stop with
SIGSTOP: requests then hang rather than being refused, the case that needs the store client's short
timeouts; an endpoint where nothing listens stands for a server that is gone. The session's SeaweedFS
is never touched.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.core.settings import Settings
from bench.serving import HOST, free_port
from tests.conftest import Api, World
from tests.support.live_app import Live, served
from tests.support.seaweed import SeaweedServer, SeaweedStartError
from tests.support.services import missing_service

MiB = 1024 * 1024
PART = 5 * MiB


def _settings(data_dir: Path, **values: Any) -> Settings:
    return Settings(data_dir=data_dir, log_level="CRITICAL", reaper_interval_seconds=3600.0, **values)


def _s3_values(endpoint_url: str, bucket: str) -> dict[str, Any]:
    # one attempt of at most a second: a stalled store answers 503 at once (behaviour, not speed)
    return {
        "blob_url": f"s3://{bucket}/faults",
        "s3_endpoint_url": endpoint_url,
        "s3_access_key_id": "seaweed-test",
        "s3_secret_access_key": "seaweed-test-secret",
        "s3_connect_timeout_seconds": 1.0,
        "s3_read_timeout_seconds": 1.0,
        "s3_max_attempts": 1,
    }


@pytest.fixture(scope="module")
def seaweed() -> Iterator[SeaweedServer]:
    server = SeaweedServer(bucket="rlhf-faults")
    try:
        server.start()
    except SeaweedStartError as exc:
        missing_service(f"SeaweedFS S3 server unavailable: {exc}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def live(seaweed: SeaweedServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    data_dir = tmp_path_factory.mktemp("faults")
    with served(_settings(data_dir, **_s3_values(seaweed.endpoint_url, seaweed.bucket))) as running:
        yield running


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "unavailable"
    assert int(response.headers["retry-after"]) > 0


def _put_part(api: Api, upload_id: str, number: int, data: bytes) -> httpx.Response:
    response: httpx.Response = api.put(f"/v1/blobs/uploads/{upload_id}/parts/{number}", content=data)
    return response


def _uploader(world: World) -> Api:
    return world.member(world.project(), "trainer")


def test_an_upload_interrupted_by_an_outage_is_refused_then_resumes(live: Live, seaweed: SeaweedServer) -> None:
    uploader = _uploader(live.world)
    stored = os.urandom(1000)
    assert uploader.post("/v1/blobs", content=stored).status_code == 201
    data = os.urandom(2 * PART + 100)
    parts = [data[:PART], data[PART : 2 * PART], data[2 * PART :]]
    started = uploader.post("/v1/blobs/uploads", json={"digest": _digest(data), "size": len(data), "part_size": PART})
    assert started.status_code == 201, started.text
    upload_id = started.json()["upload_id"]
    assert _put_part(uploader, upload_id, 1, parts[0]).status_code == 200

    with seaweed.paused():
        _assert_unavailable(_put_part(uploader, upload_id, 2, parts[1]))
        _assert_unavailable(uploader.get(f"/v1/blobs/uploads/{upload_id}"))
        _assert_unavailable(uploader.post(f"/v1/blobs/uploads/{upload_id}/complete"))
        other = os.urandom(100)
        _assert_unavailable(uploader.post("/v1/blobs/uploads", json={"digest": _digest(other), "size": 100}))
        _assert_unavailable(uploader.post("/v1/blobs", content=other))
        _assert_unavailable(uploader.get(f"/v1/blobs/{_digest(stored)}"))

    for number in (2, 3):
        assert _put_part(uploader, upload_id, number, parts[number - 1]).status_code == 200
    assert [p["uploaded"] for p in uploader.get(f"/v1/blobs/uploads/{upload_id}").json()["parts"]] == [True] * 3
    completed = uploader.post(f"/v1/blobs/uploads/{upload_id}/complete")
    assert completed.status_code == 201, completed.text
    assert uploader.get(f"/v1/blobs/{_digest(data)}").content == data


def test_a_download_cut_by_an_outage_is_aborted_not_short(live: Live, seaweed: SeaweedServer) -> None:
    """Larger than every socket buffer between SeaweedFS and the client, so the outage cuts it."""
    uploader = _uploader(live.world)
    data = os.urandom(48 * MiB)
    assert uploader.post("/v1/blobs", content=data).status_code == 201
    received = 0
    with (
        httpx.Client(base_url=live.url, headers=uploader.headers, timeout=30) as client,
        client.stream("GET", f"/v1/blobs/{_digest(data)}") as response,
    ):
        assert response.status_code == 200
        assert int(response.headers["content-length"]) == len(data)
        chunks = response.iter_bytes(MiB)
        received += len(next(chunks))
        with seaweed.paused(), pytest.raises(httpx.RemoteProtocolError):
            for chunk in chunks:
                received += len(chunk)
    assert 0 < received < len(data)
    assert uploader.get(f"/v1/blobs/{_digest(data)}").content == data  # whole again once the store is back


def test_a_store_that_is_gone_is_503(live: Live, tmp_path: Path) -> None:
    """A replica whose S3 endpoint refuses connections, over the same database."""
    uploader = _uploader(live.world)
    stored = os.urandom(1000)
    assert uploader.post("/v1/blobs", content=stored).status_code == 201
    nowhere = f"http://{HOST}:{free_port()}"
    settings = _settings(
        live.state.settings.data_dir, database_url=live.state.settings.database_url, **_s3_values(nowhere, "x")
    )
    with served(settings) as gone:
        client = Api(gone.world.client, uploader.token, uploader.principal)  # type: ignore[arg-type]
        _assert_unavailable(client.get(f"/v1/blobs/{_digest(stored)}"))
        _assert_unavailable(client.post("/v1/blobs", content=b"new"))
        _assert_unavailable(client.post("/v1/blobs/uploads", json={"digest": _digest(b"n" * 10), "size": 10}))


def test_a_failing_blob_folder_is_503(tmp_path: Path) -> None:
    with served(_settings(tmp_path / "fs")) as fs:
        uploader = _uploader(fs.world)
        stored = os.urandom(1000)
        assert uploader.post("/v1/blobs", content=stored).status_code == 201
        shutil.rmtree(tmp_path / "fs" / "blobs")  # the volume is gone
        _assert_unavailable(uploader.get(f"/v1/blobs/{_digest(stored)}"))
        _assert_unavailable(uploader.post("/v1/blobs", content=b"new"))
        _assert_unavailable(uploader.post("/v1/blobs/uploads", json={"digest": _digest(b"n" * 10), "size": 10}))
