"""Content-addressed blob storage behind one protocol, with a filesystem (app.storage.fs) and an S3
backend (app.storage.s3).

A blob is written through a `BlobWriter` that hashes while it writes; the object appears under its
digest key only once it is complete and its digest verified, so a reader never sees a partial object.

Large blobs can also arrive as a multipart upload whose parts are sent separately (on S3 straight to
the store through presigned URLs) and in any order: `start_multipart` opens one in the store's temporary
area, `part_writer` / `part_url` receive parts, `stored_parts` says which are there, and
`complete_multipart` assembles them, hashes the whole and moves it under its digest key only if the
hash is the one declared; otherwise it removes everything and raises `DigestMismatch`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from app.core.digests import is_digest
from app.core.errors import DigestMismatch, ValidationFailed

CHUNK = 1024 * 1024
Backend = Literal["filesystem", "s3"]


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


@dataclass(frozen=True)
class MultipartUpload:
    """A multipart upload open in a store: `key` names its temporary state (an S3 key, a folder), and
    `upload_id` is the store's own id for it (S3's UploadId; empty on the filesystem)."""

    key: str
    upload_id: str = ""


@dataclass(frozen=True)
class Leftover:
    """Temporary state in a store that no finished blob needs: an incomplete multipart upload
    (`upload_id` set on S3; a folder of parts on the filesystem) or a temporary object or file."""

    kind: Literal["multipart upload", "temporary object"]
    key: str
    modified: datetime
    upload_id: str = ""

    def describe(self) -> str:
        return f"{self.kind} {self.key} ({self.modified.isoformat(timespec='seconds')})"


class PartWriter(Protocol):
    def write(self, chunk: bytes) -> None: ...

    def commit(self) -> int:
        """Store the part (replacing an earlier copy of it) and return its size; it is listed only now."""
        ...

    def abort(self) -> None: ...


class BlobStore(Protocol):
    backend: Backend

    def writer(self) -> BlobWriter: ...

    def exists(self, digest: str) -> bool: ...

    def size(self, digest: str) -> int | None: ...

    def iter_bytes(self, digest: str, chunk_size: int = CHUNK) -> Iterator[bytes]:
        """Open the blob and read its first chunk at once, so that an outage or a missing object
        (`FileNotFoundError`) is raised here, before a caller answers; the rest streams on demand."""
        ...

    def presigned_url(self, digest: str, expires_s: int = 3600) -> str | None: ...

    def check(self) -> None:
        """Raise if the store cannot be reached (used by /readyz)."""
        ...

    def start_multipart(self) -> MultipartUpload: ...

    def part_url(self, upload: MultipartUpload, number: int, expires_s: int) -> str | None:
        """A URL the client may PUT part `number` to directly, or None if parts go through the API."""
        ...

    def part_writer(self, upload: MultipartUpload, number: int) -> PartWriter:
        """Raise `NotFound` if the upload is gone."""
        ...

    def stored_parts(self, upload: MultipartUpload, part_sizes: Sequence[int]) -> set[int] | None:
        """The numbers of the planned parts (1..len(part_sizes)) the store holds at their planned size;
        None once the upload is gone."""
        ...

    def complete_multipart(self, upload: MultipartUpload, part_sizes: Sequence[int], expected_digest: str) -> BlobInfo:
        """Assemble parts 1..len(part_sizes), hash them and store the blob under `expected_digest`.

        Missing or wrongly sized parts raise `ValidationFailed` and leave the upload open. Otherwise the
        upload is consumed: a hash other than `expected_digest` raises `DigestMismatch`, leaving nothing.
        An outage (`Unavailable`) leaves the upload to be completed again.
        """
        ...

    def abort_multipart(self, upload: MultipartUpload) -> None:
        """Drop the upload and its parts; a no-op if it is already gone."""
        ...

    def leftovers(self, before: datetime) -> list[Leftover]:
        """Incomplete multipart uploads and temporary objects last changed before `before`."""
        ...

    def remove_leftover(self, leftover: Leftover) -> None:
        """Remove it; a no-op if it is already gone (several sweepers may race)."""
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


def mismatch(
    expected: str, actual: str, *, what: str = "the body", claim: str = "X-Content-SHA256 says"
) -> DigestMismatch:
    return DigestMismatch(
        f"{what} hashes to {actual}, not {expected} as {claim}; nothing was stored",
        extra={"expected": expected, "actual": actual},
    )


def parts_mismatch(part_sizes: Sequence[int], stored: set[int]) -> ValidationFailed | None:
    """The error naming every part that is missing or not of its planned size, if any."""
    bad = [n for n in range(1, len(part_sizes) + 1) if n not in stored]
    if not bad:
        return None
    return ValidationFailed(
        f"{len(bad)} part(s) are missing or not of their planned size; upload them, then complete again",
        errors=[{"loc": ["parts", n], "msg": f"no part of {part_sizes[n - 1]} bytes"} for n in bad[:100]],
        extra={"missing_parts": bad},
    )


def upload_mismatch(expected: str, actual: str) -> DigestMismatch:
    return mismatch(expected, actual, what="the uploaded parts", claim="the upload session declares")
