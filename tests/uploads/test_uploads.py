"""Multipart uploads (`/v1/blobs/uploads`) on both stacks: presigned parts straight to S3, parts through
the API on the filesystem store; resumable; verified at completion, leaving nothing behind otherwise."""

from __future__ import annotations

import hashlib
import os
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select, update

from app.core.db import utcnow
from app.state import AppState
from app.storage.base import MultipartUpload
from app.storage.fs import FilesystemBlobStore
from app.storage.s3 import S3BlobStore
from app.uploads.models import BlobUploadSession
from app.uploads.service import choose_part_size, part_sizes
from tests.conftest import Api, World

MiB = 1024 * 1024
PART = 5 * MiB


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _start(api: Api, data: bytes, *, digest: str | None = None, status: int = 201) -> dict[str, Any]:
    body = {"digest": digest or _digest(data), "size": len(data), "part_size": PART}
    response = api.post("/v1/blobs/uploads", json=body)
    assert response.status_code == status, response.text
    result: dict[str, Any] = response.json()
    return result


def _send(api: Api, session: dict[str, Any], data: bytes, numbers: list[int] | None = None) -> None:
    """Send parts the way a client does: to the presigned URL when there is one, else through the API."""
    for part in session["parts"]:
        if numbers is not None and part["number"] not in numbers:
            continue
        start = (part["number"] - 1) * session["part_size"]
        chunk = data[start : start + part["size"]]
        if part["url"] is not None:
            response = httpx.put(part["url"], content=chunk, timeout=60)
        else:
            response = api.put(f"/v1/blobs/uploads/{session['upload_id']}/parts/{part['number']}", content=chunk)
        assert response.status_code == 200, response.text


def _uploader(world: World, role: str = "trainer") -> Api:
    return world.member(world.project(), role)


def _temporary_state(stack: AppState) -> set[str]:
    """Temporary objects, part files and in-progress multipart uploads in the stack's blob store."""
    store = stack.blobs
    if isinstance(store, FilesystemBlobStore):
        return {str(p) for p in store.tmp_dir.rglob("*")}
    assert isinstance(store, S3BlobStore)
    prefix = f"{store.prefix}/tmp/"
    objects = store.client.list_objects_v2(Bucket=store.bucket, Prefix=prefix).get("Contents", [])
    uploads = store.client.list_multipart_uploads(Bucket=store.bucket, Prefix=prefix).get("Uploads", [])
    return {o["Key"] for o in objects} | {f"upload {u.get('Key')} {u.get('UploadId')}" for u in uploads}


def test_multipart_round_trip(world: World, stack: AppState) -> None:
    uploader = _uploader(world)
    data = os.urandom(2 * PART + 12_345)
    before = _temporary_state(stack)
    session = _start(uploader, data)
    assert session["backend"] == ("s3" if isinstance(stack.blobs, S3BlobStore) else "filesystem")
    assert (session["digest"], session["size"], session["part_size"]) == (_digest(data), len(data), PART)
    assert [(p["number"], p["size"], p["uploaded"]) for p in session["parts"]] == [
        (1, PART, False),
        (2, PART, False),
        (3, 12_345, False),
    ]
    assert all((p["url"] is None) == (session["backend"] == "filesystem") for p in session["parts"])
    _send(uploader, session, data)
    size = world.admin.get("/v1/audit/verify").json()["tree_size"]
    done = uploader.post(f"/v1/blobs/uploads/{session['upload_id']}/complete")
    assert done.status_code == 201, done.text
    assert done.json() == {"digest": _digest(data), "size": len(data), "complete": True}
    download = uploader.get(f"/v1/blobs/{_digest(data)}")
    assert download.status_code == 200 and download.content == data
    assert uploader.get(f"/v1/blobs/uploads/{session['upload_id']}").json()["code"] == "not_found"
    events = world.admin.get("/v1/audit", params={"cursor": str(size - 1)}).json()["items"]
    assert any(e["action"] == "blob.uploaded" and e["target"] == f"blob:{_digest(data)}" for e in events)
    assert _temporary_state(stack) == before


def test_resume_reports_only_the_missing_parts(world: World) -> None:
    uploader = _uploader(world, "annotator")
    data = os.urandom(3 * PART + 1)
    session = _start(uploader, data)
    _send(uploader, session, data, numbers=[1, 3])
    resumed = _start(uploader, data, status=200)
    assert resumed["upload_id"] == session["upload_id"]
    assert [p["uploaded"] for p in resumed["parts"]] == [True, False, True, False]
    fetched = uploader.get(f"/v1/blobs/uploads/{session['upload_id']}")
    assert fetched.status_code == 200

    def unsigned(parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # a presigned part URL is signed anew on each answer (its expiry counts down): compare the rest
        return [{key: value for key, value in part.items() if key != "url"} for part in parts]

    assert unsigned(fetched.json()["parts"]) == unsigned(resumed["parts"])
    assert all(
        bool(a.get("url")) == bool(b.get("url")) for a, b in zip(fetched.json()["parts"], resumed["parts"], strict=True)
    )
    early = uploader.post(f"/v1/blobs/uploads/{session['upload_id']}/complete")
    assert early.status_code == 422 and early.json()["code"] == "validation_failed"
    assert early.json()["missing_parts"] == [2, 4]
    _send(uploader, resumed, data, numbers=[p["number"] for p in resumed["parts"] if not p["uploaded"]])
    done = uploader.post(f"/v1/blobs/uploads/{session['upload_id']}/complete")
    assert done.status_code == 201, done.text
    assert uploader.get(f"/v1/blobs/{_digest(data)}").content == data


def test_wrong_digest_at_completion_stores_nothing(world: World, stack: AppState) -> None:
    uploader = _uploader(world)
    data = os.urandom(PART + 99)
    claimed = _digest(b"other bytes of the same size")
    before = _temporary_state(stack)
    session = _start(uploader, data, digest=claimed)
    _send(uploader, session, data)
    response = uploader.post(f"/v1/blobs/uploads/{session['upload_id']}/complete")
    assert response.status_code == 400, response.text
    problem = response.json()
    assert problem["code"] == "digest_mismatch"
    assert (problem["expected"], problem["actual"]) == (claimed, _digest(data))
    assert not stack.blobs.exists(_digest(data)) and not stack.blobs.exists(claimed)
    assert world.admin.get(f"/v1/blobs/{_digest(data)}").status_code == 404
    assert uploader.get(f"/v1/blobs/uploads/{session['upload_id']}").status_code == 404
    assert _temporary_state(stack) == before
    # the session is consumed: the same digest starts afresh
    assert _start(uploader, data, digest=claimed)["upload_id"] != session["upload_id"]


def test_other_principals_session_is_not_found(world: World) -> None:
    owner = _uploader(world)
    data = os.urandom(1000)
    session = _start(owner, data)
    upload = f"/v1/blobs/uploads/{session['upload_id']}"
    for other in (_uploader(world), world.admin):
        assert other.get(upload).json()["code"] == "not_found"
        assert other.put(f"{upload}/parts/1", content=data).json()["code"] == "not_found"
        assert other.post(f"{upload}/complete").json()["code"] == "not_found"
        assert other.request("DELETE", upload).json()["code"] == "not_found"
    assert owner.get(upload).status_code == 200
    assert owner.request("DELETE", upload).status_code == 204


def test_existing_blob_needs_no_session(world: World) -> None:
    uploader = _uploader(world)
    data = os.urandom(3000)
    assert uploader.post("/v1/blobs", content=data).status_code == 201
    response = uploader.post("/v1/blobs/uploads", json={"digest": _digest(data), "size": len(data)})
    assert response.status_code == 200
    assert response.json() == {"digest": _digest(data), "size": len(data), "complete": True}
    wrong_size = uploader.post("/v1/blobs/uploads", json={"digest": _digest(data), "size": 3001})
    assert wrong_size.status_code == 422 and wrong_size.json()["code"] == "validation_failed"


def test_a_blob_the_caller_cannot_read_is_uploaded_again_not_revealed(world: World) -> None:
    """Someone else's blob is, to this caller, no blob: a session opens, the bytes go up, and only then
    may the caller cite them (tests/blobs/test_blob_citation.py has the citing side)."""
    data = os.urandom(3000)
    assert _uploader(world).post("/v1/blobs", content=data).status_code == 201
    stranger = _uploader(world)
    # a wrong size is not refused with the stored size either: nothing about the stored blob leaks
    other = stranger.post("/v1/blobs/uploads", json={"digest": _digest(data), "size": 3001})
    assert other.status_code == 201 and "3000" not in other.text
    session = _start(stranger, data)
    assert "complete" not in session and session["size"] == len(data)
    _send(stranger, session, data)
    done = stranger.post(f"/v1/blobs/uploads/{session['upload_id']}/complete")
    assert done.status_code in (200, 201), done.text
    assert stranger.get(f"/v1/blobs/{_digest(data)}").content == data


def test_parts_through_the_api_must_have_their_size(world: World, stack: AppState) -> None:
    """The API route takes parts on every backend (S3 clients that cannot reach the store use it)."""
    uploader = _uploader(world)
    data = os.urandom(PART + 10)
    session = _start(uploader, data)
    parts = f"/v1/blobs/uploads/{session['upload_id']}/parts"
    short = uploader.put(f"{parts}/2", content=data[PART:-1])
    assert short.status_code == 422 and short.json()["code"] == "validation_failed"
    long = uploader.put(f"{parts}/2", content=iter([data[PART:], b"extra"]))
    assert long.status_code == 422 and long.json()["code"] == "validation_failed"
    assert uploader.put(f"{parts}/3", content=b"x").json()["code"] == "validation_failed"
    assert [p["uploaded"] for p in uploader.get(parts.removesuffix("/parts")).json()["parts"]] == [False, False]
    assert uploader.put(f"{parts}/1", content=data[:PART]).json() == {
        "number": 1,
        "url": None,
        "uploaded": True,
        "size": PART,
    }
    assert uploader.put(f"{parts}/2", content=iter([data[PART:]])).status_code == 200
    assert uploader.post(f"{parts.removesuffix('/parts')}/complete").status_code == 201
    assert stack.blobs.size(_digest(data)) == len(data)


def test_abort_removes_the_session_and_its_parts(world: World, stack: AppState) -> None:
    uploader = _uploader(world)
    data = os.urandom(PART + 5)
    before = _temporary_state(stack)
    session = _start(uploader, data)
    _send(uploader, session, data, numbers=[1])
    assert uploader.request("DELETE", f"/v1/blobs/uploads/{session['upload_id']}").status_code == 204
    assert uploader.get(f"/v1/blobs/uploads/{session['upload_id']}").status_code == 404
    assert uploader.post(f"/v1/blobs/uploads/{session['upload_id']}/complete").status_code == 404
    assert _temporary_state(stack) == before


def _expire(stack: AppState, upload_id: str) -> MultipartUpload:
    with stack.sessions.write() as session:
        row = session.execute(select(BlobUploadSession).where(BlobUploadSession.id == upload_id)).scalar_one()
        upload = MultipartUpload(row.store_key, row.store_upload_id)
        session.execute(
            update(BlobUploadSession)
            .where(BlobUploadSession.id == upload_id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        session.commit()
    return upload


def test_expired_session_is_gone_and_aborted_lazily(world: World, stack: AppState) -> None:
    uploader = _uploader(world)
    data = os.urandom(2000)
    session = _start(uploader, data)
    _send(uploader, session, data)
    upload = _expire(stack, session["upload_id"])
    assert stack.blobs.stored_parts(upload, [2000]) == {1}  # nothing happens until the next access
    assert uploader.get(f"/v1/blobs/uploads/{session['upload_id']}").status_code == 404
    assert uploader.post(f"/v1/blobs/uploads/{session['upload_id']}/complete").status_code == 404
    fresh = _start(uploader, data)  # any POST sweeps expired sessions first
    assert fresh["upload_id"] != session["upload_id"]
    assert [p["uploaded"] for p in fresh["parts"]] == [False]
    assert stack.blobs.stored_parts(upload, [2000]) is None


def test_refusals(world: World, stack: AppState) -> None:
    uploader = _uploader(world)
    digest = _digest(b"x")
    too_big = uploader.post("/v1/blobs/uploads", json={"digest": digest, "size": stack.settings.max_blob_bytes + 1})
    assert too_big.status_code == 413 and too_big.json()["code"] == "payload_too_large"
    for body in (
        {"digest": "md5:abc", "size": 10},
        {"digest": digest, "size": 0},
        {"digest": digest, "size": 10, "part_size": MiB},
        {"digest": digest, "size": 10, "part_size": False},  # a boolean is no size
        {"digest": digest, "size": 10_001 * PART, "part_size": PART},
    ):
        response = uploader.post("/v1/blobs/uploads", json=body)
        assert response.status_code == 422 and response.json()["code"] == "validation_failed", body
    viewer = _uploader(world, "viewer")
    forbidden = viewer.post("/v1/blobs/uploads", json={"digest": digest, "size": 10})
    assert forbidden.status_code == 403 and forbidden.json()["code"] == "forbidden"


def test_server_chooses_the_part_size(world: World, stack: AppState) -> None:
    uploader = _uploader(world)
    for size in (10 * MiB, stack.settings.max_blob_bytes):
        response = uploader.post("/v1/blobs/uploads", json={"digest": _digest(os.urandom(8)), "size": size})
        assert response.status_code == 201, response.text
        session = response.json()
        assert session["part_size"] == 64 * MiB
        assert sum(p["size"] for p in session["parts"]) == size
        assert uploader.request("DELETE", f"/v1/blobs/uploads/{session['upload_id']}").status_code == 204
    # past 10,000 parts of 64 MiB the default part grows (in whole MiB) to keep within S3's limit
    assert choose_part_size(10_000 * 64 * MiB + 1, None) == 65 * MiB
    assert len(part_sizes(10_000 * 64 * MiB + 1, 65 * MiB)) <= 10_000
