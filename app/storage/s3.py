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
if the digest is the declared one copies it to its digest key; the temporary object goes then, or at
once if the digest is wrong. A completion cut short by an outage is finished by the next one.

Every call that reaches the store turns an outage (`app.storage.faults`) into `Unavailable`. Whatever
a crash leaves under `<prefix>/tmp/` (incomplete multipart uploads, temporary objects) is listed by
`leftovers` and removed by `blobs gc` and the API's periodic sweep (`app.blobs.sweep`).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from botocore.exceptions import BotoCoreError, ClientError

from app.core.digests import hex_of, is_digest
from app.core.errors import NotFound, Unavailable, ValidationFailed
from app.storage.base import (
    CHUNK,
    Backend,
    BlobInfo,
    BlobWriter,
    Leftover,
    MultipartUpload,
    PartWriter,
    check_expected,
    parts_mismatch,
    upload_mismatch,
)
from app.storage.faults import is_s3_outage, s3_outages

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from app.core.settings import Settings

from app.storage.s3_writers import (
    _NO_UPLOAD,
    _NOT_FOUND,
    GONE,
    PART_SIZE,
    _error_code,
    _S3PartWriter,
    _S3Writer,
    make_client,
)


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
            connect_timeout_s=settings.s3_connect_timeout_seconds,
            read_timeout_s=settings.s3_read_timeout_seconds,
            max_attempts=settings.s3_max_attempts,
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

    @s3_outages()
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

    @s3_outages()
    def iter_bytes(self, digest: str, chunk_size: int = CHUNK) -> Iterator[bytes]:
        key = self.key_of(digest)
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
        except ClientError as exc:
            if _error_code(exc) in _NOT_FOUND:
                raise FileNotFoundError(f"no blob {digest} in s3://{self.bucket}/{key}") from exc
            raise
        try:
            first = body.read(chunk_size)
        except BaseException:
            body.close()
            raise
        return _stream_body(body, first, chunk_size)

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

    @s3_outages()
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

    @s3_outages()
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

    @s3_outages()
    def complete_multipart(self, upload: MultipartUpload, part_sizes: Sequence[int], expected_digest: str) -> BlobInfo:
        check_expected(expected_digest)
        etags = self._planned_etags(upload, part_sizes)
        if etags is None:
            # A completion cut short by an outage after assembling the parts left their object: finish
            # it, so that the client's retry succeeds instead of losing the upload.
            if self._head_size(upload.key) != sum(part_sizes):
                raise NotFound(GONE)
        else:
            self._assemble(upload, part_sizes, etags)
        # From here the parts are one object at the temporary key. It stays through an outage, for the
        # client's retry (or the sweep), and goes once the blob is stored or the digest proved wrong.
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
        except BaseException as exc:
            if not (isinstance(exc, Unavailable) or is_s3_outage(exc)):
                self.client.delete_object(Bucket=self.bucket, Key=upload.key)
            raise
        self.client.delete_object(Bucket=self.bucket, Key=upload.key)
        return BlobInfo(digest, size)

    def _assemble(self, upload: MultipartUpload, part_sizes: Sequence[int], etags: dict[int, str]) -> None:
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

    @s3_outages()
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

    @s3_outages()
    def abort_multipart(self, upload: MultipartUpload) -> None:
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=upload.key, UploadId=upload.upload_id)
        except ClientError as exc:
            if _error_code(exc) not in _NO_UPLOAD:
                raise
        # A completion interrupted after assembling the parts leaves an object at the temporary key.
        self.client.delete_object(Bucket=self.bucket, Key=upload.key)

    # -- leftovers -------------------------------------------------------------------------------

    @s3_outages()
    def leftovers(self, before: datetime) -> list[Leftover]:
        under = self.tmp_key("")
        found: list[Leftover] = []
        uploads = self.client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket, Prefix=under)
        for page in uploads:
            for upload in page.get("Uploads", []):
                key, upload_id, initiated = upload.get("Key"), upload.get("UploadId"), upload.get("Initiated")
                if key and upload_id and initiated is not None and initiated < before:
                    found.append(Leftover("multipart upload", key, initiated, upload_id))
        for listing in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=under):
            for obj in listing.get("Contents", []):
                key, modified = obj.get("Key"), obj.get("LastModified")
                if key and modified is not None and modified < before:
                    found.append(Leftover("temporary object", key, modified))
        return found

    @s3_outages()
    def remove_leftover(self, leftover: Leftover) -> None:
        if not leftover.key.startswith(self.tmp_key("")):
            raise ValueError(f"{leftover.key!r} is not in this store's temporary area")
        if leftover.kind == "multipart upload":
            self.abort_multipart(MultipartUpload(leftover.key, leftover.upload_id))
        else:
            self.client.delete_object(Bucket=self.bucket, Key=leftover.key)


def _stream_body(body: Any, first: bytes, chunk_size: int) -> Iterator[bytes]:
    """The rest of an object whose first chunk was read; an outage mid-stream raises `Unavailable`,
    which (the response having started) makes the server drop the connection."""
    try:
        with s3_outages():
            if first:
                yield first
            yield from body.iter_chunks(chunk_size)
    finally:
        body.close()
