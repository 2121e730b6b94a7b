"""The S3 store's client factory and writers: the streaming blob writer and the writer of one API-sent part
(split from `app.storage.s3`, which documents the object layout)."""

from __future__ import annotations

import hashlib
import io
import tempfile
import uuid
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from app.core.errors import NotFound, PayloadTooLarge
from app.storage.base import CHUNK, BlobInfo, MultipartUpload, check_expected, mismatch
from app.storage.faults import is_s3_outage, log, s3_outages

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

    from app.storage.s3 import S3BlobStore

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
    connect_timeout_s: float = 2.0,
    read_timeout_s: float = 20.0,
    max_attempts: int = 3,
) -> S3Client:
    """An S3 client with path-style addressing, SigV4 and standard retries (works for S3-compatibles).

    Short timeouts and few attempts: during an outage a request is refused (503) within seconds rather
    than holding its client and a server thread for minutes. The read timeout bounds a silence between
    two reads, not a whole transfer."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"mode": "standard", "max_attempts": max_attempts},
            connect_timeout=connect_timeout_s,
            read_timeout=read_timeout_s,
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

    @s3_outages()
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

    @s3_outages()
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
        """Drop everything this writer uploaded; safe to call more than once and after commit().

        Best effort during an outage: the caller is already failing, and what stays behind under the
        temporary prefix is removed by `blobs gc` and the periodic sweep."""
        upload_id, self._upload_id = self._upload_id, None
        was_closed = self._closed
        self._close()
        try:
            if upload_id is not None:
                try:
                    self._client.abort_multipart_upload(
                        Bucket=self._store.bucket, Key=self._tmp_key, UploadId=upload_id
                    )
                except ClientError as exc:
                    if _error_code(exc) not in _NO_UPLOAD:
                        raise
            elif not was_closed and self._parts:
                # The multipart upload was completed but the commit failed after it: remove the temp object.
                self._client.delete_object(Bucket=self._store.bucket, Key=self._tmp_key)
        except (ClientError, BotoCoreError) as exc:
            if not is_s3_outage(exc):
                raise
            log.warning("temporary upload %s left for blobs gc: %s", self._tmp_key, exc)

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

    @s3_outages()
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
