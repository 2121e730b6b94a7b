from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from app.kinds.criteria_diff import ChangeKind, ChangeLevel
from app.records.models import Record


class ParentRead(BaseModel):
    id: str
    kind: str
    role: str


class BlobRefRead(BaseModel):
    path: str
    digest: str
    size: int


class RecordRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    kind: str
    project: str
    name: str
    version: str
    digest: str
    created_at: datetime
    created_by: str
    parents: list[ParentRead]
    spec: dict[str, Any]
    blobs: list[BlobRefRead]
    derived: dict[str, Any]


class RecordRegistered(RecordRead):
    """A registration's answer: the record, and for a new one the RFC 9162 leaf hash of the audit event
    that registered it (`GET /v1/audit/proofs/inclusion` proves it in the log once integrated)."""

    audit_leaf_hash: str | None = None


class RecordPage(BaseModel):
    items: list[RecordRead]
    next_cursor: str | None


def to_read(record: Record, project_name: str) -> RecordRead:
    return RecordRead(
        id=record.id,
        kind=record.kind,
        project=project_name,
        name=record.name,
        version=record.version,
        digest=record.digest,
        created_at=record.created_at,
        created_by=record.created_by,
        parents=[ParentRead(**p) for p in record.parents],
        spec=record.spec,
        blobs=[BlobRefRead(**b) for b in record.blobs],
        derived=record.derived,
    )


class CriteriaChangeRead(BaseModel):
    """One difference between two criteria specs; `before` and `after` are the JSON values at `path`
    (null where the path is added or removed), and `level` is the version bump it alone requires."""

    path: str
    change: ChangeKind
    level: ChangeLevel
    before: Any
    after: Any
    summary: str


class CriteriaDiffRead(BaseModel):
    """The structured diff of two criteria versions; `level` is the highest level among its changes."""

    model_config = ConfigDict(populate_by_name=True)

    from_: str = Field(alias="from")
    to: str
    level: ChangeLevel
    changes: list[CriteriaChangeRead]
