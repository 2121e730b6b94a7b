"""The blob store backends of the contract suites (`tests/core/test_blobstore_*.py`), each with a view
of what it holds: objects under digest keys, and temporary state."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.core.settings import Settings
from app.storage.base import BlobStore
from app.storage.fs import FilesystemBlobStore
from app.storage.s3 import S3BlobStore
from tests.support.seaweed import SeaweedServer


@dataclass
class Backend:
    name: str
    store: BlobStore
    stored_keys: Callable[[], list[str]]
    """Every object stored under a digest key."""
    leftovers: Callable[[], list[str]]
    """Temporary objects, temp files and in-progress multipart uploads: must be empty between blobs."""


def fs_backend(root: Path) -> Backend:
    store = FilesystemBlobStore(root)

    def stored() -> list[str]:
        return sorted(str(p.relative_to(root)) for p in (root / "sha256").rglob("*") if p.is_file())

    def leftovers() -> list[str]:
        return sorted(str(p) for p in store.tmp_dir.iterdir())

    return Backend("fs", store, stored, leftovers)


def s3_settings(server: SeaweedServer, bucket: str, prefix: str) -> Settings:
    return Settings(
        blob_url=f"s3://{bucket}/{prefix}",
        s3_endpoint_url=server.endpoint_url,
        s3_region=server.region,
        s3_access_key_id=server.access_key,
        s3_secret_access_key=server.secret_key,
    )


def s3_backend(server: SeaweedServer) -> Backend:
    prefix = f"contract/{uuid.uuid4().hex}"  # one shared bucket, one prefix per test
    store = S3BlobStore.from_settings(s3_settings(server, server.bucket, prefix))
    client = server.client()

    def keys(under: str) -> list[str]:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=server.bucket, Prefix=under)
        return sorted(obj["Key"] for page in pages for obj in page.get("Contents", []))

    def stored() -> list[str]:
        return keys(f"{prefix}/sha256/")

    def leftovers() -> list[str]:
        uploads = client.list_multipart_uploads(Bucket=server.bucket, Prefix=f"{prefix}/").get("Uploads", [])
        return keys(f"{prefix}/tmp/") + [f"upload {u.get('Key')} {u.get('UploadId')}" for u in uploads]

    return Backend("s3", store, stored, leftovers)
