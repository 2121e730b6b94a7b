"""Content-addressed blob storage behind one protocol, with a filesystem and an S3 backend.

A blob is written through a `BlobWriter` that hashes while it writes; the object appears under its
digest key only once it is complete and its digest verified, so a reader never sees a partial object.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from app.core.digests import hex_of, is_digest
from app.core.errors import DigestMismatch, ValidationFailed

CHUNK = 1024 * 1024


@dataclass(frozen=True)
class BlobInfo:
    digest: str
    size: int


class BlobWriter(Protocol):
    def write(self, chunk: bytes) -> None: ...

    def commit(self, expected_digest: str | None = None) -> BlobInfo:
        """Finish the object; raise `DigestMismatch` (leaving nothing behind) if it disagrees."""
        ...

    def abort(self) -> None: ...


class BlobStore(Protocol):
    def writer(self) -> BlobWriter: ...

    def exists(self, digest: str) -> bool: ...

    def size(self, digest: str) -> int | None: ...

    def iter_bytes(self, digest: str, chunk_size: int = CHUNK) -> Iterator[bytes]: ...

    def presigned_url(self, digest: str, expires_s: int = 3600) -> str | None: ...

    def check(self) -> None:
        """Raise if the store cannot be reached (used by /readyz)."""
        ...


def check_expected(expected: str | None) -> None:
    if expected is not None and not is_digest(expected):
        raise ValidationFailed(f"expected digest {expected!r} is not of the form sha256:<64 hex>")


def put_bytes(store: BlobStore, data: bytes, expected: str | None = None) -> BlobInfo:
    writer = store.writer()
    try:
        for start in range(0, len(data), CHUNK):
            writer.write(data[start : start + CHUNK])
        return writer.commit(expected)
    except BaseException:
        writer.abort()
        raise


def read_bytes(store: BlobStore, digest: str) -> bytes:
    return b"".join(store.iter_bytes(digest))


def mismatch(expected: str, actual: str) -> DigestMismatch:
    return DigestMismatch(
        f"the body hashes to {actual}, not {expected} as X-Content-SHA256 says; nothing was stored",
        extra={"expected": expected, "actual": actual},
    )


class _FilesystemWriter:
    def __init__(self, store: FilesystemBlobStore) -> None:
        self._store = store
        fd, name = tempfile.mkstemp(dir=store.tmp_dir, prefix="upload-")
        self._file = os.fdopen(fd, "wb")
        self._tmp = Path(name)
        self._hash = hashlib.sha256()
        self._size = 0

    def write(self, chunk: bytes) -> None:
        self._hash.update(chunk)
        self._file.write(chunk)
        self._size += len(chunk)

    def commit(self, expected_digest: str | None = None) -> BlobInfo:
        check_expected(expected_digest)
        digest = "sha256:" + self._hash.hexdigest()
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
        if not self._file.closed:
            self._file.close()
        self._tmp.unlink(missing_ok=True)


class FilesystemBlobStore:
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
        return self.path_of(digest).stat().st_size

    def iter_bytes(self, digest: str, chunk_size: int = CHUNK) -> Iterator[bytes]:
        with self.path_of(digest).open("rb") as fh:
            while chunk := fh.read(chunk_size):
                yield chunk

    def presigned_url(self, digest: str, expires_s: int = 3600) -> str | None:
        return None

    def check(self) -> None:
        probe = self.tmp_dir / ".ready"
        probe.write_bytes(b"ok")
        probe.unlink()
