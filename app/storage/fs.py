"""The filesystem blob store: blobs under their digest in a folder, temporary files and the parts of open
multipart uploads under its `tmp` folder (the S3 store is app.storage.s3)."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from app.core.digests import hex_of, is_digest
from app.core.errors import DigestMismatch, NotFound
from app.storage.base import (
    CHUNK,
    Backend,
    BlobInfo,
    BlobWriter,
    Leftover,
    MultipartUpload,
    PartWriter,
    check_expected,
    mismatch,
    parts_mismatch,
    upload_mismatch,
)
from app.storage.faults import fs_outages, log, store_unavailable


def _discard_temp(file: BinaryIO, tmp: Path) -> None:
    """Best effort: what a failing disk keeps is a temporary file, which `blobs gc` removes later."""
    try:
        if not file.closed:
            file.close()
        tmp.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("temporary file %s left for blobs gc: %s", tmp, exc)


class _FilesystemWriter:
    def __init__(self, store: FilesystemBlobStore) -> None:
        self._store = store
        with fs_outages(store.tmp_dir):
            fd, name = tempfile.mkstemp(dir=store.tmp_dir, prefix=TEMP_PREFIX)
        self._file = os.fdopen(fd, "wb")
        self._tmp = Path(name)
        self._hash = hashlib.sha256()
        self._size = 0

    def write(self, chunk: bytes) -> None:
        self._hash.update(chunk)
        with fs_outages(self._store.tmp_dir):
            self._file.write(chunk)
        self._size += len(chunk)

    def commit(self, expected_digest: str | None = None) -> BlobInfo:
        check_expected(expected_digest)
        digest = "sha256:" + self._hash.hexdigest()
        with fs_outages(self._store.tmp_dir):
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            if expected_digest is not None and expected_digest != digest:
                self._tmp.unlink(missing_ok=True)
                raise mismatch(expected_digest, digest)
            final = self._store.path_of(digest)
            if final.exists():
                self._tmp.unlink(missing_ok=True)
            else:
                final.parent.mkdir(parents=True, exist_ok=True)
                os.chmod(self._tmp, 0o444)
                os.replace(self._tmp, final)
        return BlobInfo(digest, self._size)

    def abort(self) -> None:
        _discard_temp(self._file, self._tmp)


class _FilesystemPartWriter:
    def __init__(self, final: Path, tmp_dir: Path) -> None:
        self._final = final
        self._tmp_dir = tmp_dir
        with fs_outages(tmp_dir):
            fd, name = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.")
        self._file = os.fdopen(fd, "wb")
        self._tmp = Path(name)
        self._size = 0

    def write(self, chunk: bytes) -> None:
        with fs_outages(self._tmp_dir):
            self._file.write(chunk)
        self._size += len(chunk)

    def commit(self) -> int:
        with fs_outages(self._tmp_dir):
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            os.replace(self._tmp, self._final)
        return self._size

    def abort(self) -> None:
        _discard_temp(self._file, self._tmp)


PART_PREFIX = "part-"
TEMP_PREFIX = "upload-"
MULTIPART_PREFIX = "multipart-"


def _stream_file(fh: BinaryIO, chunk: bytes, chunk_size: int) -> Iterator[bytes]:
    with fh:
        while chunk:
            yield chunk
            chunk = fh.read(chunk_size)


class FilesystemBlobStore:
    """Blobs at `<root>/sha256/<hex[:2]>/<hex[2:4]>/<hex>`; temporary files and the folders of open
    multipart uploads (one file per part) under `<root>/tmp`."""

    backend: Backend = "filesystem"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp_dir = root / "tmp"
        self.tmp_dir.mkdir(parents=True, exist_ok=True)

    def path_of(self, digest: str) -> Path:
        hexd = hex_of(digest)
        return self.root / "sha256" / hexd[:2] / hexd[2:4] / hexd

    def writer(self) -> BlobWriter:
        return _FilesystemWriter(self)

    def exists(self, digest: str) -> bool:
        return is_digest(digest) and self.path_of(digest).is_file()

    def size(self, digest: str) -> int | None:
        if not self.exists(digest):
            return None
        with fs_outages(self.tmp_dir):
            return self.path_of(digest).stat().st_size

    def iter_bytes(self, digest: str, chunk_size: int = CHUNK) -> Iterator[bytes]:
        with fs_outages(self.tmp_dir):
            fh = self.path_of(digest).open("rb")
            try:
                first = fh.read(chunk_size)
            except BaseException:
                fh.close()
                raise
        return _stream_file(fh, first, chunk_size)

    def presigned_url(self, digest: str, expires_s: int = 3600) -> str | None:
        return None

    def check(self) -> None:
        probe = self.tmp_dir / ".ready"
        with fs_outages(self.tmp_dir):
            probe.write_bytes(b"ok")
            probe.unlink()

    # -- multipart -------------------------------------------------------------------------------

    def _upload_dir(self, upload: MultipartUpload) -> Path:
        if not upload.key.startswith(MULTIPART_PREFIX) or not upload.key[10:].isalnum():
            raise ValueError(f"{upload.key!r} is not a multipart upload of this store")
        return self.tmp_dir / upload.key

    def _part_path(self, upload: MultipartUpload, number: int) -> Path:
        return self._upload_dir(upload) / f"{PART_PREFIX}{number:05d}"

    def start_multipart(self) -> MultipartUpload:
        upload = MultipartUpload(f"{MULTIPART_PREFIX}{uuid.uuid4().hex}")
        with fs_outages(self.tmp_dir):
            self._upload_dir(upload).mkdir()
        return upload

    def part_url(self, upload: MultipartUpload, number: int, expires_s: int) -> str | None:
        return None

    def part_writer(self, upload: MultipartUpload, number: int) -> PartWriter:
        path = self._part_path(upload, number)
        if not path.parent.is_dir():
            if not self.tmp_dir.is_dir():
                raise store_unavailable(FileNotFoundError(self.tmp_dir))
            raise NotFound("this multipart upload is gone (completed, aborted or expired)")
        return _FilesystemPartWriter(path, self.tmp_dir)

    def stored_parts(self, upload: MultipartUpload, part_sizes: Sequence[int]) -> set[int] | None:
        try:
            with fs_outages(self.tmp_dir):
                entries = list(os.scandir(self._upload_dir(upload)))
                sizes = {e.name: e.stat().st_size for e in entries if e.name.startswith(PART_PREFIX)}
        except FileNotFoundError:
            return None
        return {n for n, size in enumerate(part_sizes, 1) if sizes.get(f"{PART_PREFIX}{n:05d}") == size}

    def complete_multipart(self, upload: MultipartUpload, part_sizes: Sequence[int], expected_digest: str) -> BlobInfo:
        check_expected(expected_digest)
        stored = self.stored_parts(upload, part_sizes)
        if stored is None:
            raise NotFound("this multipart upload is gone (completed, aborted or expired)")
        if (error := parts_mismatch(part_sizes, stored)) is not None:
            raise error
        writer = _FilesystemWriter(self)
        try:
            for number in range(1, len(part_sizes) + 1):
                with fs_outages(self.tmp_dir), self._part_path(upload, number).open("rb") as fh:
                    while chunk := fh.read(CHUNK):
                        writer.write(chunk)
            info = writer.commit(expected_digest)
        except DigestMismatch as exc:
            self.abort_multipart(upload)
            raise upload_mismatch(expected_digest, exc.extra["actual"]) from None
        except FileNotFoundError as exc:  # a concurrent completion or abort removed the parts
            writer.abort()
            raise NotFound("this multipart upload is gone (completed, aborted or expired)") from exc
        except BaseException:
            writer.abort()
            raise
        self.abort_multipart(upload)
        return info

    def abort_multipart(self, upload: MultipartUpload) -> None:
        shutil.rmtree(self._upload_dir(upload), ignore_errors=True)

    # -- leftovers -------------------------------------------------------------------------------

    def leftovers(self, before: datetime) -> list[Leftover]:
        """Upload folders (a stored part moves their mtime) and the files of interrupted writes."""
        found: list[Leftover] = []
        with fs_outages(self.tmp_dir):
            for entry in os.scandir(self.tmp_dir):
                try:
                    modified = datetime.fromtimestamp(entry.stat().st_mtime, UTC)
                except FileNotFoundError:  # finished or aborted meanwhile
                    continue
                if modified >= before:
                    continue
                if entry.is_dir() and entry.name.startswith(MULTIPART_PREFIX):
                    found.append(Leftover("multipart upload", entry.name, modified))
                elif entry.is_file():
                    found.append(Leftover("temporary object", entry.name, modified))
        return found

    def remove_leftover(self, leftover: Leftover) -> None:
        if leftover.kind == "multipart upload":
            self.abort_multipart(MultipartUpload(leftover.key))
            return
        with fs_outages(self.tmp_dir):
            (self.tmp_dir / Path(leftover.key).name).unlink(missing_ok=True)
