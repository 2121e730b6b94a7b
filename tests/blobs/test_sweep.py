"""The sweep of blob-store leftovers (`app.blobs.sweep`): on both stacks, as `rlhf-registry blobs gc`, and
as the API process's background thread. Finished blobs and open upload sessions are never touched."""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from app.blobs.sweep import sweep
from app.core import migrate
from app.core.db import utcnow
from app.core.settings import Settings
from app.main import create_app
from app.state import AppState
from app.storage.base import BlobStore, MultipartUpload, put_bytes, read_bytes
from app.storage.fs import FilesystemBlobStore
from app.storage.s3 import S3BlobStore
from app.uploads.models import BlobUploadSession
from bench.serving import CLI
from tests.conftest import Api, RecordingDispatcher, World

MiB = 1024 * 1024
NOW = timedelta(0)


def _pending_keys(store: BlobStore) -> set[str]:
    return {item.key for item in store.leftovers(datetime.now(UTC) + timedelta(seconds=5))}


def _crash_leftovers(store: BlobStore) -> set[str]:
    """What crashes leave: a multipart upload whose session row was never committed, and a temporary
    object (S3: of a completion cut after assembly) or file (filesystem: of a write cut short)."""
    before = _pending_keys(store)
    store.start_multipart()
    if isinstance(store, S3BlobStore):
        store.client.put_object(Bucket=store.bucket, Key=store.tmp_key("multipart-cut"), Body=b"assembled")
    else:
        store.writer().write(b"half a blob")
    return _pending_keys(store) - before


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _session(api: Api, data: bytes) -> str:
    digest = _digest(data)
    response = api.post("/v1/blobs/uploads", json={"digest": digest, "size": len(data)})
    assert response.status_code == 201, response.text
    upload_id: str = response.json()["upload_id"]
    return upload_id


def _store_key(state: AppState, upload_id: str) -> str:
    with state.sessions.read() as session:
        key: str = session.execute(
            select(BlobUploadSession.store_key).where(BlobUploadSession.id == upload_id)
        ).scalar_one()
    return key


def _expire(state: AppState, upload_id: str) -> None:
    with state.sessions.write() as session:
        session.execute(
            update(BlobUploadSession)
            .where(BlobUploadSession.id == upload_id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        session.commit()


def test_sweep_removes_leftovers_and_expired_sessions_only(world: World, stack: AppState) -> None:
    store = stack.blobs
    uploader = world.member(world.project(), "trainer")
    kept = os.urandom(1000)
    assert uploader.post("/v1/blobs", content=kept).status_code == 201
    open_data = os.urandom(10)
    open_id = _session(uploader, open_data)
    expired_id = _session(uploader, os.urandom(10))
    _expire(stack, expired_id)
    crashed = _crash_leftovers(store)
    assert len(crashed) == 2

    dry = sweep(stack, older_than=NOW, dry_run=True)
    listed = {item.key for item in dry.leftovers}
    assert crashed <= listed
    assert _store_key(stack, open_id) not in listed
    assert any(expired_id in line for line in dry.expired_sessions)
    assert crashed <= _pending_keys(store)  # a dry run removes nothing

    sweep(stack, older_than=NOW)
    assert not crashed & _pending_keys(store)
    assert uploader.get(f"/v1/blobs/uploads/{expired_id}").status_code == 404
    with stack.sessions.read() as session:
        assert session.get(BlobUploadSession, expired_id) is None
    part = uploader.put(f"/v1/blobs/uploads/{open_id}/parts/1", content=open_data)
    assert part.status_code == 200, part.text
    assert uploader.post(f"/v1/blobs/uploads/{open_id}/complete").status_code == 201
    assert uploader.get(f"/v1/blobs/{_digest(kept)}").content == kept


def test_expired_uploads_are_aborted_in_the_store_only_after_their_rows_are_committed_gone(
    world: World, stack: AppState, monkeypatch: pytest.MonkeyPatch
) -> None:
    uploader = world.member(world.project(), "trainer")
    expired = [_session(uploader, os.urandom(10)) for _ in range(2)]
    keys = {_store_key(stack, upload_id) for upload_id in expired}
    for upload_id in expired:
        _expire(stack, upload_id)
    abort = stack.blobs.abort_multipart
    rows_left_at_abort: dict[str, int] = {}

    def abort_watched(upload: MultipartUpload) -> None:
        # another connection sees the row only until its deletion is committed
        with stack.sessions.read() as session:
            rows = session.execute(select(BlobUploadSession.id).where(BlobUploadSession.store_key == upload.key))
            rows_left_at_abort[upload.key] = len(rows.all())
        abort(upload)

    monkeypatch.setattr(stack.blobs, "abort_multipart", abort_watched)
    sweep(stack, older_than=timedelta(hours=1))
    assert keys <= set(rows_left_at_abort) and set(rows_left_at_abort.values()) == {0}
    assert not keys & _pending_keys(stack.blobs)


def _gc(env: dict[str, str], *args: str) -> list[str]:
    result = subprocess.run([*CLI, "blobs", "gc", *args], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_blobs_gc_command(tmp_path: Path) -> None:
    migrate.upgrade(Settings(data_dir=tmp_path).database_url)
    store = FilesystemBlobStore(tmp_path / "blobs")  # the embedded default's store
    kept = put_bytes(store, b"a finished blob")
    crashed = _crash_leftovers(store)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RLHF_REGISTRY_")}
    env["RLHF_REGISTRY_DATA_DIR"] = str(tmp_path)

    dry = _gc(env, "--dry-run", "--older-than", "0")
    assert sorted(line.split()[-2] for line in dry) == sorted(crashed)
    assert all(line.startswith("would remove ") for line in dry)
    assert crashed <= {p.name for p in store.tmp_dir.iterdir()}

    removed = _gc(env, "--older-than", "0")
    assert [line.replace("removed ", "would remove ", 1) for line in removed] == dry
    assert list(store.tmp_dir.iterdir()) == []
    assert read_bytes(store, kept.digest) == b"a finished blob"


def test_the_api_process_sweeps_on_its_interval(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        log_level="WARNING",
        reaper_interval_seconds=3600.0,
        blob_gc_interval_seconds=0.05,
        blob_gc_older_than_hours=0.0,
    )
    migrate.upgrade(settings.database_url)
    state = AppState.build(settings)
    state.dispatcher = RecordingDispatcher()
    crashed = _crash_leftovers(state.blobs)
    with TestClient(create_app(state=state)):
        deadline = time.monotonic() + 30
        while crashed & _pending_keys(state.blobs) and time.monotonic() < deadline:
            time.sleep(0.05)
    assert not crashed & _pending_keys(state.blobs)
    state.sessions.engine.dispose()
