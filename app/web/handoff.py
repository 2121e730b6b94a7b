"""Handoff package archives as the pages serve them: the zip itself, and the self-contained
`handoff.html` inside it for a preview. The archive is opened through the package service
(app.packages.service), which knows where a package record keeps it."""

from __future__ import annotations

import zipfile

from app.core.errors import NotFound
from app.packages import service as packages_service
from app.records.models import Record
from app.storage.base import BlobStore

PACKAGE_KIND = "handoff_package"
PREVIEW_MEMBER = "handoff.html"


def archive_digest(record: Record) -> str:
    """The digest of a package record's zip; not_found for any other record (a page link, not an API)."""
    if record.kind != PACKAGE_KIND:
        raise NotFound(f"record {record.id} is not a handoff package")
    return packages_service.archive_digest(record)


def read_member(store: BlobStore, record: Record, member: str = PREVIEW_MEMBER) -> bytes:
    if not store.exists(archive_digest(record)):
        raise NotFound(f"the archive of {record.name} v{record.version} is not in the blob store")
    try:
        with packages_service.open_archive(store, record) as archive:
            return archive.read(member)
    except KeyError:
        raise NotFound(f"the package archive holds no {member}") from None
    except zipfile.BadZipFile:
        raise NotFound(f"the archive of {record.name} v{record.version} is not a readable zip") from None
