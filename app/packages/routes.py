"""Handoff package routes: build one for an approved deployment, download its archive. Listing and
reading the records go through the generic collection routes (`/handoff-packages`)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import StreamingResponse

from app.access import service as access_service
from app.api.deps import PrincipalDep, StateDep, UowDep
from app.audit.routes import IntegratedDep
from app.core.errors import NotFound
from app.packages import service
from app.packages.schemas import PackageBuild
from app.records import service as records_service
from app.records.models import Record
from app.records.schemas import RecordRead, to_read
from app.storage.base import BlobStore

router = APIRouter(tags=["handoff-packages"])
BUILDERS = frozenset({"approver"})
VIEW = frozenset({"viewer"})
PREFIX = "/v1/projects/{project}/handoff-packages"
ZIP = "application/zip"


class ZipResponse(StreamingResponse):
    """A streamed zip archive; as a route's response class it documents the media type."""

    media_type = ZIP


@router.post(
    PREFIX,
    status_code=201,
    summary="Build the handoff package of an approved deployment",
    responses={200: {"model": RecordRead, "description": "Nothing it is built from changed: the existing package"}},
)
def build(
    _: IntegratedDep,
    project: str,
    body: PackageBuild,
    uow: UowDep,
    principal: PrincipalDep,
    response: Response,
    state: StateDep,
) -> RecordRead:
    """201 with the new `handoff_package` record, 200 with the existing one when nothing it is built from
    changed; 409 `deployment_not_approved`."""
    access = access_service.project_access(uow.session, principal, project, BUILDERS)
    result = service.build_package(
        uow,
        project_id=access.project.id,
        project_name=access.project.name,
        actor=principal.name,
        body=body.model_dump(exclude_unset=True),
        store=state.blobs,
        key=state.signing_key,
    )
    response.status_code = 201 if result.created else 200
    return to_read(result.record, access.project.name)


@router.get(
    PREFIX + "/{name}/{version}/download",
    summary="Download a handoff package archive (zip)",
    response_class=ZipResponse,
    responses={200: {"content": {ZIP: {"schema": {"type": "string", "format": "binary"}}}}},
)
def download(
    project: str, name: str, version: str, uow: UowDep, principal: PrincipalDep, state: StateDep
) -> ZipResponse:
    access = access_service.project_access(uow.session, principal, project, VIEW)
    record = records_service.get_in_project(uow.session, access.project.id, "handoff_package", name, version)
    return archive_download(state.blobs, record)


def archive_download(store: BlobStore, record: Record) -> ZipResponse:
    """The package's zip, streamed from the blob store (the API's download and the pages' both)."""
    digest = service.archive_digest(record)
    size = store.size(digest)
    if size is None:
        raise NotFound(f"the archive {digest} of {record.name} v{record.version} is not in the blob store")
    filename = "".join(c if c.isascii() and c.isprintable() and c not in '"\\' else "_" for c in record.name)
    headers = {
        "Content-Length": str(size),
        "Content-Disposition": f'attachment; filename="{filename}-v{record.version}.zip"',
        "ETag": f'"{digest}"',
        "X-Content-SHA256": digest,
    }
    return ZipResponse(store.iter_bytes(digest), headers=headers)
