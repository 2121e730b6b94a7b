from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import RedirectResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from app.access import service as access_service
from app.api.deps import PrincipalDep, StateDep, UowDep
from app.blobs import service
from app.blobs.schemas import BlobRead
from app.core.digests import is_digest
from app.core.errors import Forbidden, NotFound, PayloadTooLarge, ValidationFailed
from app.storage.base import BlobWriter

router = APIRouter(prefix="/v1/blobs", tags=["blobs"])
UPLOADERS = frozenset({"annotator", "trainer"})


def _normalise_digest(value: str | None) -> str | None:
    if value is None:
        return None
    digest = value if value.startswith("sha256:") else "sha256:" + value
    digest = digest.lower()
    if not is_digest(digest):
        raise ValidationFailed(
            "X-Content-SHA256 must be 64 hex characters, optionally prefixed by 'sha256:'",
            errors=[{"loc": ["header", "X-Content-SHA256"], "msg": "not a sha256 digest"}],
        )
    return digest


@router.post(
    "",
    status_code=201,
    response_model=BlobRead,
    responses={200: {"model": BlobRead, "description": "this caller had uploaded these bytes before"}},
    summary="Upload a blob (raw body, streamed)",
    description="201 when the blob is new to this caller, 200 when this caller had uploaded it before.",
)
async def upload(
    request: Request,
    response: Response,
    state: StateDep,
    uow: UowDep,
    principal: PrincipalDep,
    x_content_sha256: Annotated[str | None, Header()] = None,
) -> BlobRead:
    if not await run_in_threadpool(access_service.holds_any_role, uow.session, principal, UPLOADERS):
        raise Forbidden("uploading blobs needs the annotator or trainer role in some project")
    expected = _normalise_digest(x_content_sha256)
    limit = state.settings.max_blob_bytes
    writer: BlobWriter = await run_in_threadpool(state.blobs.writer)
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"blobs are limited to {limit} bytes; use /v1/blobs/uploads for more")
            if chunk:
                await run_in_threadpool(writer.write, chunk)
        info = await run_in_threadpool(writer.commit, expected)
    except BaseException:
        await run_in_threadpool(writer.abort)
        raise
    created = await run_in_threadpool(service.record_upload, uow, principal, info)
    response.status_code = 201 if created else 200
    return BlobRead(digest=info.digest, size=info.size)


# The body is the blob's bytes, not JSON: `response_class` keeps FastAPI from claiming a JSON schema.
_BYTES = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
_DOWNLOAD: dict[int | str, dict[str, Any]] = {
    200: {"description": "the blob's bytes", "content": _BYTES},
    307: {"description": "redirect to a presigned URL (BLOB_REDIRECT)"},
}
_HEAD: dict[int | str, dict[str, Any]] = {200: {"description": "the blob's size and digest, in headers"}}


@router.head(
    "/{digest}",
    summary="Size and digest of a blob",
    operation_id="head_blob",
    response_class=Response,
    responses=_HEAD,
)
@router.get(
    "/{digest}",
    summary="Download a blob",
    operation_id="download_blob",
    response_class=StreamingResponse,
    responses=_DOWNLOAD,
)
def download(digest: str, request: Request, state: StateDep, uow: UowDep, principal: PrincipalDep) -> Response:
    size = service.readable_sizes(uow.session, principal, [digest]).get(digest) if is_digest(digest) else None
    if size is None:
        raise NotFound(f"blob {digest} not found")
    headers = {"Content-Length": str(size), "ETag": f'"{digest}"', "X-Content-SHA256": digest}
    if request.method == "HEAD":
        return Response(headers=headers, media_type="application/octet-stream")
    if state.settings.blob_redirect:
        url = state.blobs.presigned_url(digest)
        if url is not None:
            return RedirectResponse(url, status_code=307)
    # The store answers (or raises `Unavailable`, a 503) before the 200 goes out; a failure after that
    # drops the connection, so the client never takes a short body for the whole blob.
    body = state.blobs.iter_bytes(digest)
    return StreamingResponse(body, headers=headers, media_type="application/octet-stream")
