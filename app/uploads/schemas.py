from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from app.storage.base import Backend

DIGEST_PATTERN = r"^sha256:[0-9a-f]{64}$"


class UploadCreate(BaseModel):
    digest: str = Field(pattern=DIGEST_PATTERN, description="sha256 of the whole blob, `sha256:<hex>`")
    size: int = Field(ge=1, description="the blob's size in bytes")
    part_size: int | None = Field(
        default=None, strict=True, description="bytes per part (all but the last); the server chooses when omitted"
    )


class UploadPartRead(BaseModel):
    number: int
    url: str | None = Field(
        description="presigned URL to PUT the part to, straight to the store; null: PUT it to "
        "/v1/blobs/uploads/{upload_id}/parts/{number}"
    )
    uploaded: bool
    size: int


class UploadRead(BaseModel):
    upload_id: str
    digest: str
    size: int
    part_size: int
    parts: list[UploadPartRead]
    backend: Backend
    expires_at: datetime


class BlobStored(BaseModel):
    """The blob is in the store: nothing (more) to upload."""

    digest: str
    size: int
    complete: Literal[True] = True
