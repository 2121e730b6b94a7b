from __future__ import annotations

from pydantic import BaseModel, Field


class BlobRead(BaseModel):
    """A blob in the store, as `POST /v1/blobs` answers it."""

    digest: str = Field(description="`sha256:<hex>` of the bytes")
    size: int = Field(description="the blob's size in bytes")
