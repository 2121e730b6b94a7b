"""Choose the blob backend from `RLHF_REGISTRY_BLOB_URL` (MLflow-style: one interface, scheme picks)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from app.core.blobs import BlobStore
from app.core.blobs_fs import FilesystemBlobStore
from app.core.blobs_s3 import S3BlobStore
from app.core.settings import Settings


def open_blob_store(settings: Settings) -> BlobStore:
    url = urlparse(settings.blob_url)
    if url.scheme == "file":
        return FilesystemBlobStore(Path(url.path))
    if url.scheme == "s3":
        return S3BlobStore.from_settings(settings)
    raise ValueError(f"unsupported RLHF_REGISTRY_BLOB_URL scheme {url.scheme!r} (use file:// or s3://)")
