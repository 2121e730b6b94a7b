"""Blob storage: one interface (`base.BlobStore`), one backend module per URL scheme.

`RLHF_REGISTRY_BLOB_URL` picks the backend by its scheme, MLflow-style: `file:///srv/blobs` is a folder
on local disk (`fs`), `s3://bucket/prefix` an S3-compatible server (`s3`). A backend module is imported
only when its scheme is used, so a process that never touches S3 never loads boto3.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

if TYPE_CHECKING:
    from app.core.settings import Settings
    from app.storage.base import BlobStore

SCHEMES = ("file", "s3")


def open_blob_store(settings: Settings) -> BlobStore:
    url = urlparse(settings.blob_url)
    if url.scheme == "file":
        from app.storage.fs import FilesystemBlobStore

        return FilesystemBlobStore(Path(url.path))
    if url.scheme == "s3":
        from app.storage.s3 import S3BlobStore

        return S3BlobStore.from_settings(settings)
    raise ValueError(
        f"unsupported RLHF_REGISTRY_BLOB_URL scheme {url.scheme!r} (use {' or '.join(s + '://' for s in SCHEMES)})"
    )
