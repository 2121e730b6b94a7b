"""Store outages are raised as `Unavailable` by the blob stores themselves, before any byte is answered
(a failing or vanished blob folder, an S3 endpoint where nothing listens), and an upload they cut short
can be finished afterwards."""

from __future__ import annotations

import hashlib
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.core.errors import Unavailable
from app.core.settings import Settings
from app.storage.base import BlobStore, MultipartUpload, put_bytes, read_bytes
from app.storage.fs import FilesystemBlobStore
from app.storage.s3 import S3BlobStore
from bench.serving import HOST, free_port
from tests.support.blob_backends import s3_backend


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# -- outages -----------------------------------------------------------------------------------


def _assert_every_call_unavailable(store: BlobStore, existing: str) -> None:
    with pytest.raises(Unavailable):
        store.iter_bytes(existing)  # raised by the call itself, before any byte is asked for
    with pytest.raises(Unavailable):
        put_bytes(store, b"new content " + os.urandom(8))
    with pytest.raises(Unavailable):
        store.start_multipart()
    with pytest.raises(Unavailable):
        store.check()
    with pytest.raises(Unavailable):
        store.leftovers(datetime.now(UTC))


@pytest.mark.parametrize("fault", ["removed", "not a folder"])
def test_filesystem_errors_are_unavailable(tmp_path: Path, fault: str) -> None:
    root = tmp_path / "blobs"
    store = FilesystemBlobStore(root)
    existing = put_bytes(store, b"stored before the fault").digest
    upload = store.start_multipart()
    shutil.rmtree(root)
    if fault == "not a folder":
        root.write_bytes(b"")  # the mount point of a volume that is gone
    _assert_every_call_unavailable(store, existing)
    with pytest.raises(Unavailable):
        store.part_writer(upload, 1)
    with pytest.raises(Unavailable):
        store.stored_parts(upload, [10])


def test_filesystem_missing_object_is_still_file_not_found(tmp_path: Path) -> None:
    store = FilesystemBlobStore(tmp_path / "blobs")
    with pytest.raises(FileNotFoundError):
        store.iter_bytes(digest(b"never stored"))


def test_unreachable_s3_endpoint_is_unavailable() -> None:
    port = free_port()  # nothing listens there: connection refused, as when the server is down
    settings = Settings(
        blob_url="s3://bucket/prefix",
        s3_endpoint_url=f"http://{HOST}:{port}",
        s3_access_key_id="k",
        s3_secret_access_key="s",
        s3_max_attempts=2,
    )
    store = S3BlobStore.from_settings(settings)
    _assert_every_call_unavailable(store, digest(b"stored before the fault"))
    with pytest.raises(Unavailable):
        store.exists(digest(b"x"))
    with pytest.raises(Unavailable):
        store.stored_parts(MultipartUpload(store.tmp_key("multipart-0"), "id"), [10])
    with pytest.raises(Unavailable):
        store.part_writer(MultipartUpload(store.tmp_key("multipart-0"), "id"), 1).commit()


@pytest.mark.s3
def test_a_completion_cut_after_assembly_is_finished_by_the_next(request: pytest.FixtureRequest) -> None:
    """An outage between S3 assembling the parts and the blob being stored: the retry stores it."""
    s3 = s3_backend(request.getfixturevalue("seaweed_s3"))
    store = s3.store
    assert isinstance(store, S3BlobStore)
    data = os.urandom(5 * 1024 * 1024 + 10)
    sizes = [5 * 1024 * 1024, 10]
    upload = store.start_multipart()
    for number, start in ((1, 0), (2, sizes[0])):
        part = store.part_writer(upload, number)
        part.write(data[start : start + sizes[number - 1]])
        part.commit()
    listed = store.client.list_parts(Bucket=store.bucket, Key=upload.key, UploadId=upload.upload_id)
    etags = {p["PartNumber"]: p["ETag"] for p in listed["Parts"] if p["Size"] == sizes[p["PartNumber"] - 1]}
    store.client.complete_multipart_upload(  # what the cut completion got done
        Bucket=store.bucket,
        Key=upload.key,
        UploadId=upload.upload_id,
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etags[n]} for n in (1, 2)]},
    )
    assert store.complete_multipart(upload, sizes, digest(data)).digest == digest(data)
    assert read_bytes(store, digest(data)) == data
    assert s3.leftovers() == []
