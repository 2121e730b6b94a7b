"""Every ORM model, imported in one place so that metadata is complete for Alembic."""

from app.access.models import ApiToken, Membership, Principal, Project
from app.audit.models import AuditEvent, AuditHead
from app.blobs.models import Blob, BlobUploader
from app.core.db import Base
from app.records.models import Record, RecordBlob, RecordEdge, RecordEvent, RecordSeries
from app.runs.models import Run, RunEvent
from app.uploads.models import BlobUploadSession

__all__ = [
    "ApiToken",
    "AuditEvent",
    "AuditHead",
    "Base",
    "Blob",
    "BlobUploadSession",
    "BlobUploader",
    "Membership",
    "Principal",
    "Project",
    "Record",
    "RecordBlob",
    "RecordEdge",
    "RecordEvent",
    "RecordSeries",
    "Run",
    "RunEvent",
]
