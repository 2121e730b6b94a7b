from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Query, Response

from app.access import service as access_service
from app.api.deps import PrincipalDep, StateDep, UowDep
from app.records.routes import decode_cursor, encode_cursor
from app.runs import external, service
from app.runs.schemas import RunCreate, RunEventPage, RunPage, RunRead

router = APIRouter(prefix="/v1/projects/{project}/runs", tags=["runs"])
TRAINERS = frozenset({"trainer"})
VIEW = frozenset({"viewer"})


@router.post(
    "",
    status_code=202,
    response_model=RunRead,
    responses={
        200: {"description": "The run an earlier POST with the same Idempotency-Key and body created, as it is now"},
        201: {"description": "An external run, running, with its token (shown this once)"},
    },
)
def create_run(
    project: str,
    body: Annotated[RunCreate, Body()],
    uow: UowDep,
    principal: PrincipalDep,
    state: StateDep,
    response: Response,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> dict[str, Any]:
    """202 with the run, queued, whether or not the broker is reachable now (the run is sent again until a
    worker takes it). With an `Idempotency-Key`, a retry of the same POST answers 200 with the first run.
    `kind: external` (trained elsewhere, app.runs.external): 201 with the run, running, and its token,
    returned this once."""
    access = access_service.project_access(uow.session, principal, project, TRAINERS)
    sent = body.as_sent()
    if sent.get("kind") == external.KIND:
        run, token = external.create_run(
            uow,
            project_id=access.project.id,
            project_name=project,
            actor=principal.name,
            body=sent,
            settings=state.settings,
        )
        response.status_code = 201
        return external.created_to_dict(run, token)
    run, created = service.create_run(
        uow,
        project_id=access.project.id,
        project_name=project,
        actor=principal.name,
        body=sent,
        dispatcher=state.dispatcher,
        settings=state.settings,
        idempotency_key=idempotency_key,
    )
    if not created:
        response.status_code = 200
    return service.run_to_dict(run)


@router.get("", response_model=RunPage)
def list_runs(
    project: str,
    uow: UowDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
    access = access_service.project_access(uow.session, principal, project, VIEW)
    rows, last = service.list_runs(uow.session, access.project.id, after_id=decode_cursor(cursor), limit=limit)
    return {"items": [service.run_to_dict(r) for r in rows], "next_cursor": encode_cursor(last)}


@router.get("/{run_id}", response_model=RunRead)
def get_run(project: str, run_id: str, uow: UowDep, principal: PrincipalDep) -> dict[str, Any]:
    access = access_service.project_access(uow.session, principal, project, VIEW)
    return service.run_to_dict(service.get_run(uow.session, access.project.id, run_id))


@router.post("/{run_id}/cancel", response_model=RunRead)
def cancel_run(project: str, run_id: str, uow: UowDep, principal: PrincipalDep) -> dict[str, Any]:
    access = access_service.project_access(uow.session, principal, project, TRAINERS)
    run = service.get_run(uow.session, access.project.id, run_id)
    return service.run_to_dict(service.cancel(uow, run, principal.name, project))


@router.get("/{run_id}/events", response_model=RunEventPage)
def run_events(
    project: str,
    run_id: str,
    uow: UowDep,
    principal: PrincipalDep,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> dict[str, Any]:
    access = access_service.project_access(uow.session, principal, project, VIEW)
    service.get_run(uow.session, access.project.id, run_id)
    events = service.events_after(uow.session, run_id, after, limit)
    items = [service.event_to_dict(e) for e in events]
    return {"items": items, "next_cursor": str(items[-1]["seq"]) if len(items) == limit else None}
