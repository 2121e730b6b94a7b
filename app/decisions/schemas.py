"""The decisions API's response bodies, as the OpenAPI document shows them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class RecordEventRead(BaseModel):
    id: str
    record_id: str
    type: str
    data: dict[str, Any]
    actor: str
    created_at: str


class RevocationRead(RecordEventRead):
    downstream_quarantined: int


class RecordEventPage(BaseModel):
    items: list[RecordEventRead]
    next_cursor: str | None
