"""S3 backend for the content-addressed blob store (AWS S3, SeaweedFS, MinIO, ...).

Objects live at `<prefix>/sha256/<hex>`. A writer streams: it hashes while it writes and buffers at most
one part (8 MiB); once a part fills it starts a multipart upload to a temporary key `<prefix>/tmp/<uuid>`
and ships the part, so memory stays bounded by one part whatever the blob size. On commit a blob that
fit in its first part goes straight to its final key with one (atomic) `put_object`; a larger one is
completed on the temporary key, server-side copied to the final key (managed copy, so objects over
5 GB work) unless that already exists, and the temporary key is deleted. Readers therefore never see a
partial object under a digest key.

Multipart uploads for large blobs (`start_multipart` ...) live at `<prefix>/tmp/multipart-<uuid>`;
clients PUT their parts straight to S3 through presigned `upload_part` URLs. Completion assembles the
parts on that temporary key, streams the object back to hash it (memory stays at one chunk), and only
if the digest is the declared one copies it to its digest key; the temporary object always goes.
"""

from __future__ import annotations

import hashlib
import io
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from app.core.blobs import (
    CHUNK,
    Backend,
    BlobInfo,
    BlobWriter,
    MultipartUpload,
    PartWriter,
    check_expected,
    mismatch,
    parts_mismatch,
    upload_mismatch,
)
from app.core.digests import hex_of, is_digest
from app.core.errors import NotFound, PayloadTooLarge, Unavailable, ValidationFailed

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

    from app.core.settings import Settings

PART_SIZE = 8 * 1024 * 1024
"""Multipart part size: S3 wants >= 5 MiB for every part but the last; also the writer's memory bound."""
MAX_PARTS = 10_000
"""S3's limit on parts per multipart upload: with 8 MiB parts a blob can be up to 78.1 GiB."""

_NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound"})
_NO_UPLOAD = frozenset({"404", "NoSuchUpload"})
GONE = "this multipart upload is gone (completed, aborted or expired)"


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def make_client(
    *,
    endpoint_url: str | None,
    region: str,
    access_key_id: str | None,
    secret_access_key: str | None,
) -> S3Client:
    """An S3 client with path-style addressing, SigV4 and standard retries (works for S3-compatibles)."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"mode": "standard", "max_attempts": 5},
            connect_timeout=10,
            read_timeout=120,
        ),
    )


class _S3Writer:
    def __init__(self, store: S3BlobStore) -> None:
        self._store = store
        self._client = store.client
        self._tmp_key = store.tmp_key(uuid.uuid4().hex)
        self._hash = hashlib.sha256()
        self._size = 0
        self._buf = io.BytesIO()
        self._upload_id: str | None = None
        self._parts: list[CompletedPartTypeDef] = []
        self._closed = False

    def write(self, chunk: bytes) -> None:
        if self._closed:
            raise RuntimeError("write() after commit() or abort()")
        self._hash.update(chunk)
        self._size += len(chunk)
        view = memoryview(chunk)
        part_size = self._store.part_size
        while view:
            room = part_size - self._buf.tell()
            self._buf.write(view[:room])
            view = view[room:]
            if self._buf.tell() >= part_size:
                self._flush_part()

    def _flush_part(self) -> None:
        """Upload the buffered bytes as the next part (starting the multipart upload if needed)."""
        if self._upload_id is None:
            created = self._client.create_multipart_upload(
                Bucket=self._store.bucket, Key=self._tmp_key, ContentType="application/octet-stream"
            )
            self._upload_id = created["UploadId"]
        number = len(self._parts) + 1
        if number > MAX_PARTS:
            raise PayloadTooLarge(
                f"blob exceeds {MAX_PARTS * self._store.part_size} bytes, the most a multipart upload "
                f"of {MAX_PARTS} parts of {self._store.part_size} bytes can hold"
            )
        self._buf.seek(0)
        # The BytesIO goes to botocore as a file: it streams from the buffer, no second copy of the part.
        response = self._client.upload_part(
            Bucket=self._store.bucket,
            Key=self._tmp_key,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=self._buf,
        )
        self._parts.append({"PartNumber": number, "ETag": response["ETag"]})
        self._buf = io.BytesIO()

    def commit(self, expected_digest: str | None = None) -> BlobInfo:
        check_expected(expected_digest)
        if self._closed:
            raise RuntimeError("commit() after commit() or abort()")
        digest = "sha256:" + self._hash.hexdigest()
        if expected_digest is not None and expected_digest != digest:
            self.abort()
            raise mismatch(expected_digest, digest)
        store = self._store
        final = store.key_of(digest)
        try:
            if self._upload_id is None:
                # Fit in one part and never flushed: a single PUT is atomic, no temporary object.
                if not store.key_exists(final):
                    store.client.put_object(
                        Bucket=store.bucket,
                        Key=final,
                        Body=self._buf.getvalue(),
                        ContentType="application/octet-stream",
                    )
            else:
                if self._buf.tell() > 0:
                    self._flush_part()
                store.client.complete_multipart_upload(
                    Bucket=store.bucket,
                    Key=self._tmp_key,
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": self._parts},
                )
                self._upload_id = None  # completed: from here on the temporary key is an object
                try:
                    if not store.key_exists(final):
                        store.client.copy(
                            {"Bucket": store.bucket, "Key": self._tmp_key},
                            store.bucket,
                            final,
                            ExtraArgs={"ContentType": "application/octet-stream"},
                        )
                finally:
                    store.client.delete_object(Bucket=store.bucket, Key=self._tmp_key)
        except BaseException:
            self.abort()
            raise
        self._close()
        return BlobInfo(digest, self._size)

    def abort(self) -> None:
        """Drop everything this writer uploaded; safe to call more than once and after commit()."""
        upload_id, self._upload_id = self._upload_id, None
        was_closed = self._closed
        self._close()
        if upload_id is not None:
            try:
                self._client.abort_multipart_upload(Bucket=self._store.bucket, Key=self._tmp_key, UploadId=upload_id)
            except ClientError as exc:
                if _error_code(exc) not in _NO_UPLOAD:
                    raise
        elif not was_closed and self._parts:
            # The multipart upload was completed but the commit failed after it: remove the temp object.
            self._client.delete_object(Bucket=self._store.bucket, Key=self._tmp_key)

    def _close(self) -> None:
        self._closed = True
        self._buf = io.BytesIO()


class _S3PartWriter:
    """A part sent through the API rather than to its presigned URL: spooled (to a temporary file past
    one chunk, so memory stays flat), then shipped with one `upload_part`, which needs its length."""

    def __init__(self, store: S3BlobStore, upload: MultipartUpload, number: int) -> None:
        self._store = store
        self._upload = upload
        self._number = number
        self._file = tempfile.SpooledTemporaryFile(max_size=CHUNK)  # noqa: SIM115 (closed by commit or abort)
        self._size = 0

    def write(self, chunk: bytes) -> None:
        self._file.write(chunk)
        self._size += len(chunk)

    def commit(self) -> int:
        self._file.seek(0)
        try:
            self._store.client.upload_part(
                Bucket=self._store.bucket,
                Key=self._upload.key,
                UploadId=self._upload.upload_id,
                PartNumber=self._number,
                Body=self._file,
                ContentLength=self._size,
            )
        except ClientError as exc:
            if _error_code(exc) in _NO_UPLOAD:
                raise NotFound(GONE) from exc
            raise
        finally:
            self._file.close()
        return self._size

    def abort(self) -> None:
        self._file.close()


class S3BlobStore:
    backend: Backend = "s3"

    def __init__(self, client: S3Client, bucket: str, prefix: str = "", *, part_size: int = PART_SIZE) -> None:
        if part_size < 5 * 1024 * 1024:
            raise ValueError("S3 multipart parts must be at least 5 MiB")
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.part_size = part_size

    @classmethod
    def from_settings(cls, settings: Settings) -> S3BlobStore:
        url = urlparse(settings.blob_url)
        if url.scheme != "s3" or not url.netloc:
            raise ValueError(f"RLHF_REGISTRY_BLOB_URL {settings.blob_url!r} is not of the form s3://bucket/prefix")
        key_id = settings.s3_access_key_id
        secret = settings.s3_secret_access_key
        client = make_client(
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            access_key_id=key_id.get_secret_value() if key_id is not None else None,
            secret_access_key=secret.get_secret_value() if secret is not None else None,
        )
        return cls(client, url.netloc, url.path)

    # -- keys ------------------------------------------------------------------------------------

    def _join(self, *parts: str) -> str:
        return "/".join((self.prefix, *parts)) if self.prefix else "/".join(parts)

    def key_of(self, digest: str) -> str:
        if not is_digest(digest):
            raise ValidationFailed(f"{digest!r} is not of the form sha256:<64 hex>")
        return self._join("sha256", hex_of(digest))

    def tmp_key(self, name: str) -> str:
        return self._join("tmp", name)

    def _head_size(self, key: str) -> int | None:
        try:
            return self.client.head_object(Bucket=self.bucket, Key=key)["ContentLength"]
        except ClientError as exc:
            if _error_code(exc) in _NOT_FOUND:
                return None
            raise

    def key_exists(self, key: str) -> bool:
        return self._head_size(key) is not None

    # -- BlobStore -------------------------------------------------------------------------------

    def writer(self) -> BlobWriter:
        return _S3Writer(self)

    def exists(self, digest: str) -> bool:
        return is_digest(digest) and self.key_exists(self.key_of(digest))

    def size(self, digest: str) -> int | None:
        if not is_digest(digest):
            return None
        return self._head_size(self.key_of(digest))

    def iter_bytes(self, digest: str, chunk_size: int = CHUNK) -> Iterator[bytes]:
        key = self.key_of(digest)
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        except ClientError as exc:
            if _error_code(exc) in _NOT_FOUND:
                raise FileNotFoundError(f"no blob {digest} in s3://{self.bucket}/{key}") from exc
            raise
        try:
            yield from body.iter_chunks(chunk_size)
        finally:
            body.close()

    def presigned_url(self, digest: str, expires_s: int = 3600) -> str | None:
        return self.client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": self.key_of(digest)},
            ExpiresIn=expires_s,
        )

    def check(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as exc:
            raise Unavailable(f"S3 bucket {self.bucket!r} is not reachable: {exc}") from exc

    # -- multipart -------------------------------------------------------------------------------

    def start_multipart(self) -> MultipartUpload:
        key = self.tmp_key(f"multipart-{uuid.uuid4().hex}")
        created = self.client.create_multipart_upload(
            Bucket=self.bucket, Key=key, ContentType="application/octet-stream"
        )
        return MultipartUpload(key, created["UploadId"])

    def part_url(self, upload: MultipartUpload, number: int, expires_s: int) -> str | None:
        return self.client.generate_presigned_url(
            "upload_part",
            Params={"Bucket": self.bucket, "Key": upload.key, "UploadId": upload.upload_id, "PartNumber": number},
            ExpiresIn=expires_s,
        )

    def part_writer(self, upload: MultipartUpload, number: int) -> PartWriter:
        return _S3PartWriter(self, upload, number)

    def _planned_etags(self, upload: MultipartUpload, part_sizes: Sequence[int]) -> dict[int, str] | None:
        """Part number -> ETag of a stored upload of that part at its planned size; None if the upload is
        gone. SeaweedFS lists every upload of a part number, not only the last one as S3 does, so the
        part is picked by its size (the digest check at completion settles its content)."""
        pages = self.client.get_paginator("list_parts").paginate(
            Bucket=self.bucket, Key=upload.key, UploadId=upload.upload_id
        )
        etags: dict[int, str] = {}
        try:
            for page in pages:
                for part in page.get("Parts", []):
                    number = part["PartNumber"]
                    if 1 <= number <= len(part_sizes) and part["Size"] == part_sizes[number - 1]:
                        etags[number] = part["ETag"]
        except ClientError as exc:
            if _error_code(exc) in _NO_UPLOAD:
                return None
            raise
        return etags

    def stored_parts(self, upload: MultipartUpload, part_sizes: Sequence[int]) -> set[int] | None:
        etags = self._planned_etags(upload, part_sizes)
        return None if etags is None else set(etags)

    def complete_multipart(self, upload: MultipartUpload, part_sizes: Sequence[int], expected_digest: str) -> BlobInfo:
        check_expected(expected_digest)
        etags = self._planned_etags(upload, part_sizes)
        if etags is None:
            raise NotFound(GONE)
        if (error := parts_mismatch(part_sizes, set(etags))) is not None:
            raise error
        try:
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=upload.key,
                UploadId=upload.upload_id,
                MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etags[n]} for n in range(1, len(part_sizes) + 1)]},
            )
        except ClientError as exc:
            if _error_code(exc) in _NO_UPLOAD:  # a concurrent completion or abort won
                raise NotFound(GONE) from exc
            raise
        # From here the parts are one object at the temporary key, which goes whatever happens next.
        try:
            digest, size = self._hash_object(upload.key)
            if digest != expected_digest:
                raise upload_mismatch(expected_digest, digest)
            final = self.key_of(digest)
            if not self.key_exists(final):
                self.client.copy(
                    {"Bucket": self.bucket, "Key": upload.key},
                    self.bucket,
                    final,
                    ExtraArgs={"ContentType": "application/octet-stream"},
                )
        finally:
            self.client.delete_object(Bucket=self.bucket, Key=upload.key)
        return BlobInfo(digest, size)

    def _hash_object(self, key: str) -> tuple[str, int]:
        hasher = hashlib.sha256()
        size = 0
        body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        try:
            for chunk in body.iter_chunks(CHUNK):
                hasher.update(chunk)
                size += len(chunk)
        finally:
            body.close()
        return "sha256:" + hasher.hexdigest(), size

    def abort_multipart(self, upload: MultipartUpload) -> None:
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=upload.key, UploadId=upload.upload_id)
        except ClientError as exc:
            if _error_code(exc) not in _NO_UPLOAD:
                raise
        # A completion interrupted after assembling the parts leaves an object at the temporary key.
        self.client.delete_object(Bucket=self.bucket, Key=upload.key)
