"""`/v1/blobs/uploads`: multipart upload sessions for large blobs (see `app.uploads.service`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from app.api.deps import PrincipalDep, ReadPrincipalDep, ReadUowDep, StateDep, UowDep
from app.api.errors import problem_response
from app.core.errors import ValidationFailed
from app.storage.base import CHUNK
from app.uploads import service
from app.uploads.models import BlobUploadSession
from app.uploads.schemas import BlobStored, UploadCreate, UploadPartRead, UploadRead

router = APIRouter(prefix="/v1/blobs/uploads", tags=["blobs"])


def _open_upload(upload_id: str, uow: ReadUowDep, principal: ReadPrincipalDep, state: StateDep) -> BlobUploadSession:
    """The principal's open session. A part's upload writes nothing to the database, so it runs in a
    read unit: on SQLite it does not hold the one write lock while its bytes stream."""
    return service.find(uow.session, state.blobs, principal, upload_id)


def _completable_upload(upload_id: str, uow: UowDep, principal: PrincipalDep, state: StateDep) -> BlobUploadSession:
    return service.find(uow.session, state.blobs, principal, upload_id, uploader=True)


OpenUploadDep = Annotated[BlobUploadSession, Depends(_open_upload)]
CompletableUploadDep = Annotated[BlobUploadSession, Depends(_completable_upload)]


def _read(view: service.SessionView) -> UploadRead:
    row = view.session
    return UploadRead(
        upload_id=row.id,
        digest=row.digest,
        size=row.size,
        part_size=row.part_size,
        parts=[UploadPartRead(number=p.number, url=p.url, uploaded=p.uploaded, size=p.size) for p in view.parts],
        backend="s3" if row.backend == "s3" else "filesystem",
        expires_at=row.expires_at,
    )


@router.post(
    "",
    status_code=201,
    response_model=UploadRead,
    responses={
        200: {
            "model": UploadRead | BlobStored,
            "description": "this principal's unfinished session for the digest, or the blob already stored",
        }
    },
    summary="Start (or resume) a multipart upload of a large blob",
    description="201 with a new session; 200 with this principal's unfinished session for the same "
    "digest (its `uploaded` flags say which parts the store holds); 200 `{digest, size, complete: true}` "
    "when the blob is already stored. Send each part to its `url` (PUT, straight to the store) or, when "
    "`url` is null, to `PUT /v1/blobs/uploads/{upload_id}/parts/{number}`; then POST `.../complete`. "
    "Sessions belong to the principal that opened them and expire at `expires_at` (24 h): an expired "
    "session answers 404 and is aborted lazily, by the next `POST /v1/blobs/uploads` (which first aborts "
    "up to 10 of the oldest expired sessions), by `DELETE` or by the server's periodic sweep. While the "
    "blob store is unavailable every call here answers 503 `unavailable` with `Retry-After` and changes "
    "nothing: retry it.",
)
def start_upload(
    body: UploadCreate, response: Response, uow: UowDep, principal: PrincipalDep, state: StateDep
) -> UploadRead | JSONResponse:
    outcome = service.start(
        uow,
        state.blobs,
        principal,
        digest=body.digest,
        size=body.size,
        part_size=body.part_size,
        max_blob_bytes=state.settings.max_blob_bytes,
    )
    if isinstance(outcome, service.AlreadyStored):
        # Rendered here: `response_model` is the session a 201 always answers, which this is not.
        stored = BlobStored(digest=outcome.info.digest, size=outcome.info.size)
        return JSONResponse(stored.model_dump(mode="json"), status_code=200)
    view, created = outcome
    response.status_code = 201 if created else 200
    return _read(view)


@router.get("/{upload_id}", summary="A multipart upload session, with the parts the store holds")
def get_upload(upload_id: str, row: OpenUploadDep, state: StateDep) -> UploadRead:
    return _read(service.view(state.blobs, row))


@router.put(
    "/{upload_id}/parts/{number}",
    summary="Upload one part through the API (raw body, streamed; exactly the part's size)",
    description="For sessions whose parts have no presigned `url` (the filesystem store); also accepted "
    "on S3 for clients that cannot reach the store.",
)
async def put_part(
    upload_id: str,
    number: int,
    request: Request,
    row: OpenUploadDep,
    state: StateDep,
) -> UploadPartRead:
    receiver = await run_in_threadpool(service.open_part, state.blobs, row, number)
    try:
        # Read here rather than declared as a parameter: the server has checked it before the app runs,
        # and the document should not invite clients to send a Content-Length other than the body's.
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) != receiver.expected):
            raise ValidationFailed(
                f"part {number} must be exactly {receiver.expected} bytes, not {declared}",
                errors=[{"loc": ["header", "Content-Length"], "msg": "not the part's size"}],
            )
        pending = bytearray()
        async for chunk in request.stream():
            pending += chunk
            if len(pending) >= CHUNK:  # one thread hop per MiB, not per socket read
                await run_in_threadpool(receiver.write, bytes(pending))
                pending.clear()
        if pending:
            await run_in_threadpool(receiver.write, bytes(pending))
        size = await run_in_threadpool(receiver.commit)
    except ClientDisconnect:
        await run_in_threadpool(receiver.abort)
        # nobody reads this answer; it keeps an interrupted client out of the error log
        raise ValidationFailed(f"the client went away before part {number} was complete") from None
    except BaseException:
        await run_in_threadpool(receiver.abort)
        raise
    return UploadPartRead(number=number, url=None, uploaded=True, size=size)


@router.post(
    "/{upload_id}/complete",
    response_model=BlobStored,
    status_code=201,
    responses={200: {"model": BlobStored, "description": "the store held the blob before"}},
    summary="Assemble the parts, verify the digest, store the blob",
    description="201 when the store did not hold the blob before, 200 when it did. Missing parts: 422 "
    "`validation_failed` (the session stays open). A digest other than the declared one: 400 "
    "`digest_mismatch`; nothing is stored and the session is gone.",
)
def complete_upload(
    upload_id: str,
    response: Response,
    row: CompletableUploadDep,
    uow: UowDep,
    principal: PrincipalDep,
    state: StateDep,
) -> BlobStored | JSONResponse:
    outcome = service.complete(uow, state.blobs, principal, row)
    if isinstance(outcome, service.Rejected):
        # Returned, not raised: the session's removal must be committed along with the error.
        return problem_response(outcome.error)
    response.status_code = 201 if outcome.created else 200
    return BlobStored(digest=outcome.info.digest, size=outcome.info.size)


@router.delete("/{upload_id}", status_code=204, summary="Abort a multipart upload (expired or not)")
def abort_upload(upload_id: str, uow: UowDep, principal: PrincipalDep, state: StateDep) -> Response:
    service.abort(uow, state.blobs, principal, upload_id)
    return Response(status_code=204)
