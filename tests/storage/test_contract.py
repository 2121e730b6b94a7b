"""One contract for every `BlobStore` backend: the filesystem one and S3 (against a local SeaweedFS)."""

from __future__ import annotations

import hashlib
import os
import tracemalloc
import urllib.request
from datetime import UTC, datetime, timedelta

import pytest

from app.core.errors import DigestMismatch, NotFound, Unavailable, ValidationFailed
from app.core.settings import Settings
from app.storage.base import (
    BlobInfo,
    BlobStore,
    MultipartUpload,
    put_bytes,
    read_bytes,
)
from app.storage.s3 import PART_SIZE, S3BlobStore
from tests.support.blob_backends import Backend, s3_backend, s3_settings
from tests.support.seaweed import SeaweedServer, seaweed_s3  # noqa: F401  (session fixture)

MiB = 1024 * 1024


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def write_in_chunks(backend: Backend, data: bytes, chunk: int, expected: str | None = None) -> str:
    writer = backend.store.writer()
    try:
        for start in range(0, len(data), chunk):
            writer.write(data[start : start + chunk])
        return writer.commit(expected).digest
    except BaseException:
        writer.abort()
        raise


def test_put_and_read_round_trip(backend: Backend) -> None:
    data = os.urandom(100_000)
    info = put_bytes(backend.store, data)
    assert info.digest == digest(data)
    assert info.size == len(data)
    assert backend.store.exists(info.digest)
    assert backend.store.size(info.digest) == len(data)
    assert read_bytes(backend.store, info.digest) == data
    assert backend.stored_keys() != []
    assert backend.leftovers() == []


def test_empty_blob(backend: Backend) -> None:
    info = put_bytes(backend.store, b"")
    assert info == type(info)(digest(b""), 0)
    assert backend.store.size(info.digest) == 0
    assert read_bytes(backend.store, info.digest) == b""


def test_key_layout(backend: Backend) -> None:
    info = put_bytes(backend.store, os.urandom(1000))
    hexd = info.digest.removeprefix("sha256:")
    [key] = backend.stored_keys()
    assert key.startswith("sha256/" if backend.name == "fs" else "contract/")
    assert key.endswith(hexd)
    if backend.name == "s3":
        assert key.endswith(f"/sha256/{hexd}")


def test_identical_content_twice_is_one_object(backend: Backend) -> None:
    data = os.urandom(50_000)
    first = put_bytes(backend.store, data)
    second = put_bytes(backend.store, data)
    assert first == second
    assert len(backend.stored_keys()) == 1
    assert read_bytes(backend.store, first.digest) == data
    assert backend.leftovers() == []


def test_identical_large_content_twice_is_one_object(backend: Backend) -> None:
    data = os.urandom(PART_SIZE + 1)
    assert write_in_chunks(backend, data, MiB) == write_in_chunks(backend, data, MiB) == digest(data)
    assert len(backend.stored_keys()) == 1
    assert backend.leftovers() == []


def test_expected_digest_that_matches_is_accepted(backend: Backend) -> None:
    data = os.urandom(10_000)
    info = put_bytes(backend.store, data, digest(data))
    assert info.digest == digest(data)
    assert backend.store.exists(info.digest)


@pytest.mark.parametrize("size", [10_000, PART_SIZE + 12_345], ids=["single-part", "multipart"])
def test_wrong_expected_digest_leaves_nothing(backend: Backend, size: int) -> None:
    data = os.urandom(size)
    wrong = digest(b"something else")
    with pytest.raises(DigestMismatch) as caught:
        write_in_chunks(backend, data, MiB, expected=wrong)
    assert caught.value.extra == {"expected": wrong, "actual": digest(data)}
    assert not backend.store.exists(digest(data))
    assert not backend.store.exists(wrong)
    assert backend.stored_keys() == []
    assert backend.leftovers() == []


def test_malformed_expected_digest_is_rejected(backend: Backend) -> None:
    with pytest.raises(ValidationFailed):
        put_bytes(backend.store, b"abc", "md5:abc")
    assert backend.stored_keys() == []
    assert backend.leftovers() == []


@pytest.mark.parametrize("size", [0, 10_000, 2 * PART_SIZE + 1], ids=["empty", "single-part", "multipart"])
def test_abort_leaves_nothing(backend: Backend, size: int) -> None:
    data = os.urandom(size)
    writer = backend.store.writer()
    for start in range(0, size, MiB):
        writer.write(data[start : start + MiB])
    writer.abort()
    writer.abort()  # idempotent
    assert not backend.store.exists(digest(data))
    assert backend.stored_keys() == []
    assert backend.leftovers() == []


def test_blob_larger_than_one_part_round_trips(backend: Backend) -> None:
    data = os.urandom(20 * MiB + 7)
    # An odd chunk size so chunks straddle part boundaries; one chunk bigger than a part too.
    writer = backend.store.writer()
    writer.write(data[: PART_SIZE + 3])
    rest = data[PART_SIZE + 3 :]
    for start in range(0, len(rest), 3 * MiB + 1):
        writer.write(rest[start : start + 3 * MiB + 1])
    info = writer.commit(digest(data))
    assert info.digest == digest(data)
    assert info.size == len(data)
    assert backend.store.size(info.digest) == len(data)
    hasher = hashlib.sha256()
    for chunk in backend.store.iter_bytes(info.digest):
        hasher.update(chunk)
    assert "sha256:" + hasher.hexdigest() == info.digest
    assert backend.leftovers() == []


def test_missing_digests(backend: Backend) -> None:
    absent = digest(b"never stored " + os.urandom(8))
    assert backend.store.exists(absent) is False
    assert backend.store.size(absent) is None
    assert backend.store.exists("not-a-digest") is False
    assert backend.store.size("not-a-digest") is None
    with pytest.raises(FileNotFoundError):
        list(backend.store.iter_bytes(absent))


def test_iter_bytes_yields_chunks_of_the_requested_size(backend: Backend) -> None:
    data = os.urandom(2 * 65536 + 32768)
    info = put_bytes(backend.store, data)
    chunks = list(backend.store.iter_bytes(info.digest, chunk_size=65536))
    assert [len(c) for c in chunks] == [65536, 65536, 32768]
    assert b"".join(chunks) == data


def test_presigned_url_is_none_or_serves_the_blob(backend: Backend) -> None:
    data = os.urandom(4096)
    info = put_bytes(backend.store, data)
    url = backend.store.presigned_url(info.digest, expires_s=60)
    if backend.name == "fs":
        assert url is None
        return
    assert url is not None
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == data


def test_check(backend: Backend) -> None:
    backend.store.check()


@pytest.mark.s3
def test_s3_check_fails_for_a_missing_bucket(request: pytest.FixtureRequest) -> None:
    server: SeaweedServer = request.getfixturevalue("seaweed_s3")
    store = S3BlobStore.from_settings(s3_settings(server, "no-such-bucket-here", "x"))
    with pytest.raises(Unavailable):
        store.check()


def test_s3_from_settings_parses_bucket_and_prefix() -> None:
    settings = Settings(blob_url="s3://my-bucket/some/prefix/", s3_endpoint_url="http://127.0.0.1:1")
    store = S3BlobStore.from_settings(settings)
    assert (store.bucket, store.prefix) == ("my-bucket", "some/prefix")
    assert store.key_of(digest(b"")) == "some/prefix/sha256/" + hashlib.sha256(b"").hexdigest()
    bare = S3BlobStore.from_settings(Settings(blob_url="s3://my-bucket", s3_endpoint_url="http://127.0.0.1:1"))
    assert bare.key_of(digest(b"")) == "sha256/" + hashlib.sha256(b"").hexdigest()


def test_memory_stays_flat_while_writing_200_mib(backend: Backend) -> None:
    """The writer holds at most one part, whatever the blob size (behaviour, not speed)."""
    chunk = os.urandom(MiB)
    hasher = hashlib.sha256()
    tracemalloc.start()
    try:
        writer = backend.store.writer()
        for i in range(200):
            piece = chunk[i:] + chunk[:i]  # distinct content per MiB, one MiB at a time
            hasher.update(piece)
            writer.write(piece)
        info = writer.commit()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.size == 200 * MiB
    assert info.digest == "sha256:" + hasher.hexdigest()
    assert backend.store.size(info.digest) == 200 * MiB
    assert peak < 40 * MiB, f"peak traced memory {peak / MiB:.1f} MiB"
    assert backend.leftovers() == []


# -- multipart uploads -----------------------------------------------------------------------------

MP_PART = 5 * MiB  # S3's smallest part but the last


def _plan(data: bytes, part: int = MP_PART) -> list[bytes]:
    return [data[start : start + part] for start in range(0, len(data), part)]


def _send_part(backend: Backend, upload: MultipartUpload, number: int, data: bytes) -> None:
    writer = backend.store.part_writer(upload, number)
    try:
        for start in range(0, len(data), MiB):
            writer.write(data[start : start + MiB])
        assert writer.commit() == len(data)
    except BaseException:
        writer.abort()
        raise


def test_multipart_round_trip_in_any_order(backend: Backend) -> None:
    data = os.urandom(2 * MP_PART + 12_345)
    parts = _plan(data)
    upload = backend.store.start_multipart()
    assert backend.store.stored_parts(upload, [len(p) for p in parts]) == set()
    for number in (3, 1, 2):
        _send_part(backend, upload, number, parts[number - 1])
    _send_part(backend, upload, 2, parts[1])  # a part sent twice replaces the first copy
    assert backend.store.stored_parts(upload, [len(p) for p in parts]) == {1, 2, 3}
    assert backend.store.stored_parts(upload, [MP_PART, 12_345]) == {1}  # sizes as planned only
    assert backend.stored_keys() == []
    info = backend.store.complete_multipart(upload, [len(p) for p in parts], digest(data))
    assert info == BlobInfo(digest(data), len(data))
    assert read_bytes(backend.store, info.digest) == data
    assert backend.store.stored_parts(upload, [len(p) for p in parts]) is None
    assert backend.leftovers() == []


def test_multipart_missing_part_keeps_the_upload_open(backend: Backend) -> None:
    data = os.urandom(MP_PART + 100)
    parts = _plan(data)
    upload = backend.store.start_multipart()
    _send_part(backend, upload, 2, parts[1])
    with pytest.raises(ValidationFailed) as caught:
        backend.store.complete_multipart(upload, [len(p) for p in parts], digest(data))
    assert caught.value.extra == {"missing_parts": [1]}
    _send_part(backend, upload, 1, parts[0][:-1])  # one byte short
    with pytest.raises(ValidationFailed):
        backend.store.complete_multipart(upload, [len(p) for p in parts], digest(data))
    _send_part(backend, upload, 1, parts[0])
    assert backend.store.complete_multipart(upload, [len(p) for p in parts], digest(data)).size == len(data)
    assert backend.leftovers() == []


@pytest.mark.parametrize("size", [1000, MP_PART + 1], ids=["one-part", "two-parts"])
def test_multipart_wrong_digest_leaves_nothing(backend: Backend, size: int) -> None:
    data = os.urandom(size)
    parts = _plan(data)
    upload = backend.store.start_multipart()
    for number, part in enumerate(parts, 1):
        _send_part(backend, upload, number, part)
    wrong = digest(b"not these bytes")
    with pytest.raises(DigestMismatch) as caught:
        backend.store.complete_multipart(upload, [len(p) for p in parts], wrong)
    assert caught.value.extra == {"expected": wrong, "actual": digest(data)}
    assert not backend.store.exists(digest(data)) and not backend.store.exists(wrong)
    assert backend.stored_keys() == []
    assert backend.leftovers() == []
    assert backend.store.stored_parts(upload, [len(p) for p in parts]) is None


def test_multipart_of_content_already_stored_is_one_object(backend: Backend) -> None:
    data = os.urandom(MP_PART + 10)
    put_bytes(backend.store, data)
    upload = backend.store.start_multipart()
    for number, part in enumerate(_plan(data), 1):
        _send_part(backend, upload, number, part)
    assert backend.store.complete_multipart(upload, [MP_PART, 10], digest(data)).digest == digest(data)
    assert len(backend.stored_keys()) == 1
    assert backend.leftovers() == []


def test_multipart_abort_leaves_nothing(backend: Backend) -> None:
    upload = backend.store.start_multipart()
    _send_part(backend, upload, 1, os.urandom(1000))
    writer = backend.store.part_writer(upload, 2)
    writer.write(b"half a part")
    writer.abort()
    assert backend.store.stored_parts(upload, [1000, 10]) == {1}
    backend.store.abort_multipart(upload)
    backend.store.abort_multipart(upload)  # idempotent
    assert backend.store.stored_parts(upload, [1000, 10]) is None
    with pytest.raises(NotFound):
        backend.store.complete_multipart(upload, [1000], digest(b"x"))
    with pytest.raises(NotFound):
        _send_part(backend, upload, 1, b"too late")
    assert backend.leftovers() == []


def test_part_url_is_none_or_takes_the_part(backend: Backend) -> None:
    data = os.urandom(MP_PART + 3)
    parts = _plan(data)
    upload = backend.store.start_multipart()
    urls = [backend.store.part_url(upload, n, expires_s=60) for n in (1, 2)]
    if backend.name == "fs":
        assert urls == [None, None]
        backend.store.abort_multipart(upload)
        return
    for url, part in zip(urls, parts, strict=True):
        assert url is not None
        request = urllib.request.Request(url, data=part, method="PUT")
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200
    assert backend.store.stored_parts(upload, [MP_PART, 3]) == {1, 2}
    assert backend.store.complete_multipart(upload, [MP_PART, 3], digest(data)).digest == digest(data)
    assert backend.leftovers() == []


def test_memory_stays_flat_while_completing_a_multipart_upload(backend: Backend) -> None:
    """Completion streams the parts (filesystem) or the assembled object (S3) through the hash."""
    data = os.urandom(4 * MP_PART)
    upload = backend.store.start_multipart()
    for number, part in enumerate(_plan(data), 1):
        _send_part(backend, upload, number, part)
    tracemalloc.start()
    try:
        backend.store.complete_multipart(upload, [MP_PART] * 4, digest(data))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 12 * MiB, f"peak traced memory {peak / MiB:.1f} MiB"
    assert backend.leftovers() == []


# -- leftovers of interrupted transfers -------------------------------------------------------------


def _crashed_temporary(store: BlobStore) -> None:
    """What a process killed mid-write leaves: a temporary file, or a temporary object on S3 (the
    object of a completion interrupted after assembling its parts)."""
    if isinstance(store, S3BlobStore):
        store.client.put_object(Bucket=store.bucket, Key=store.tmp_key("multipart-crashed"), Body=b"assembled")
        return
    writer = store.writer()
    writer.write(b"half a blob")  # never committed nor aborted


def test_leftovers_are_listed_and_removed_and_blobs_are_not(backend: Backend) -> None:
    store = backend.store
    data = os.urandom(1000)
    kept = put_bytes(store, data)
    upload = store.start_multipart()
    part = store.part_writer(upload, 1)
    part.write(b"a part")
    part.commit()
    _crashed_temporary(store)
    stored_before = backend.stored_keys()

    assert store.leftovers(datetime.now(UTC) - timedelta(minutes=1)) == []  # all younger than that
    found = store.leftovers(datetime.now(UTC) + timedelta(seconds=5))
    assert sorted(item.kind for item in found) == ["multipart upload", "temporary object"]
    multipart = next(item for item in found if item.kind == "multipart upload")
    assert multipart.key == upload.key and multipart.upload_id == upload.upload_id

    for item in found:
        store.remove_leftover(item)
        store.remove_leftover(item)  # another sweeper got there first: a no-op
    assert backend.leftovers() == []
    assert store.stored_parts(upload, [6]) is None
    assert backend.stored_keys() == stored_before
    assert read_bytes(store, kept.digest) == data


@pytest.mark.s3
def test_an_unfinished_s3_writer_is_a_leftover_until_aborted(request: pytest.FixtureRequest) -> None:
    """Past its first part a writer has a multipart upload open: listed while it runs, gone on abort."""
    s3 = s3_backend(request.getfixturevalue("seaweed_s3"))
    store = s3.store
    assert isinstance(store, S3BlobStore)
    writer = store.writer()
    writer.write(os.urandom(store.part_size + 1))
    found = store.leftovers(datetime.now(UTC) + timedelta(seconds=5))
    assert [item.kind for item in found] == ["multipart upload"]
    writer.abort()
    assert s3.leftovers() == []
