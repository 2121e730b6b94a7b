"""Every ORM model, imported in one place so that metadata is complete for Alembic."""

from app.access.models import ApiToken, Membership, Principal, Project
from app.audit.models import AuditEvent, AuditHead
from app.blobs.models import Blob, BlobUploader
from app.core.db import Base
from app.records.models import Record, RecordBlob, RecordEdge, RecordEvent, RecordSeries

__all__ = [
    "ApiToken",
    "AuditEvent",
    "AuditHead",
    "Base",
    "Blob",
    "BlobUploader",
    "Membership",
    "Principal",
    "Project",
    "Record",
    "RecordBlob",
    "RecordEdge",
    "RecordEvent",
    "RecordSeries",
]
