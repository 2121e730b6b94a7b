"""The routes an external run's token opens (app.runs.external): the run's inputs and their blobs, its
events, blob uploads, checkpoint registration and the end of the run. Nothing else takes that token."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Header, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from app.api.deps import StateDep, UowDep
from app.blobs import routes as blobs_routes
from app.blobs.schemas import BlobRead
from app.records.schemas import RecordRead, to_read
from app.runs import external, service
from app.runs.schemas import RunRead

router = APIRouter(prefix="/v1/projects/{project}/runs/{run_id}", tags=["external runs"])
AuthorizationHeader = Annotated[str | None, Header(description="Bearer <the run's token>")]


class ExternalInputs(BaseModel):
    run: RunRead
    inputs: dict[str, dict[str, Any]] = Field(description="role: {id, kind, name, version, digest, files, blobs}")


class ExternalEvent(BaseModel):
    type: Literal["metrics", "log"]
    data: dict[str, Any] = Field(description="metrics: {step, <name>: number, ...}; log: {message}")


class ExternalEventPosted(BaseModel):
    seq: int


class ExternalCheckpoint(BaseModel):
    """A checkpoint's registration body (as `POST /{collection}` takes it) with its `kind`; the parents
    are the run's inputs and are not named here."""

    model_config = {"extra": "allow"}
    kind: str = Field(description="a trained kind: policy_checkpoint or reward_checkpoint")


class ExternalFinish(BaseModel):
    status: Literal["succeeded", "failed"]
    error: dict[str, Any] | None = None


@router.get("/inputs", response_model=ExternalInputs, summary="An external run and its pinned inputs (run token)")
def inputs(project: str, run_id: str, uow: UowDep, authorization: AuthorizationHeader = None) -> dict[str, Any]:
    run = external.run_of_token(uow.session, authorization, project, run_id)
    found = external.inputs_of(uow.session, run)
    return {
        "run": service.run_to_dict(run),
        "inputs": {role: external.input_to_dict(record) for role, record in found.items()},
    }


@router.get(
    "/inputs/blobs/{digest}",
    summary="Download a blob of an external run's inputs (run token)",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}},
)
def input_blob(
    project: str, run_id: str, digest: str, state: StateDep, uow: UowDep, authorization: AuthorizationHeader = None
) -> Response:
    run = external.run_of_token(uow.session, authorization, project, run_id)
    external.require_input_blob(uow.session, run, digest)
    headers = {"ETag": f'"{digest}"', "X-Content-SHA256": digest}
    return StreamingResponse(state.blobs.iter_bytes(digest), headers=headers, media_type="application/octet-stream")


@router.post("/events", status_code=201, response_model=ExternalEventPosted, summary="Post an external run's event")
def post_event(
    project: str,
    run_id: str,
    event: Annotated[ExternalEvent, Body()],
    uow: UowDep,
    authorization: AuthorizationHeader = None,
) -> dict[str, int]:
    run = external.run_of_token(uow.session, authorization, project, run_id)
    return {"seq": external.post_event(uow.session, run, event.type, event.data)}


@router.post("/blobs", status_code=201, response_model=BlobRead, summary="Upload a blob for an external run")
async def upload_blob(
    project: str,
    run_id: str,
    request: Request,
    response: Response,
    state: StateDep,
    uow: UowDep,
    authorization: AuthorizationHeader = None,
    x_content_sha256: Annotated[str | None, Header()] = None,
) -> BlobRead:
    """As `POST /v1/blobs`, in the name of the run's creator (whose registrations cite the blob)."""

    def creator() -> Any:
        run = external.run_of_token(uow.session, authorization, project, run_id)
        return external.creator_of(uow.session, run)

    actor = await run_in_threadpool(creator)
    return await blobs_routes.upload(request, response, state, uow, actor, x_content_sha256)


@router.post(
    "/checkpoints", status_code=201, response_model=RecordRead, summary="Register a checkpoint an external run trained"
)
def register_checkpoint(
    project: str,
    run_id: str,
    body: Annotated[ExternalCheckpoint, Body()],
    state: StateDep,
    uow: UowDep,
    authorization: AuthorizationHeader = None,
) -> RecordRead:
    run = external.run_of_token(uow.session, authorization, project, run_id)
    sent = {"kind": body.kind, **(body.model_extra or {})}
    record = external.register_checkpoint(uow, run, project_name=project, body=sent, store=state.blobs)
    return to_read(record, project)


@router.post("/finish", response_model=RunRead, summary="End an external run (its token dies with it)")
def finish(
    project: str,
    run_id: str,
    body: Annotated[ExternalFinish, Body()],
    uow: UowDep,
    authorization: AuthorizationHeader = None,
) -> dict[str, Any]:
    run = external.run_of_token(uow.session, authorization, project, run_id)
    external.finish_run(uow, run, project_name=project, status=body.status, error=body.error)
    return service.run_to_dict(run)
