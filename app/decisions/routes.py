from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body
from pydantic import BaseModel, ConfigDict

from app.access import service as access_service
from app.api.deps import PrincipalDep, StateDep, UowDep
from app.core.errors import NotFound
from app.decisions import service
from app.decisions.schemas import RecordEventPage, RecordEventRead, RevocationRead
from app.records import service as records_service

router = APIRouter(tags=["decisions"])
APPROVERS = frozenset({"approver"})
VIEW = frozenset({"viewer"})


class DecisionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = ""


class RevokeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str


def _decide(
    project: str,
    name: str,
    version: str,
    body: DecisionBody,
    uow: UowDep,
    principal: PrincipalDep,
    state: StateDep,
    decision: Literal["approved", "rejected"],
) -> dict[str, Any]:
    access = access_service.project_access(uow.session, principal, project, APPROVERS)
    deployment = records_service.get_in_project(uow.session, access.project.id, "deployment", name, version)
    event = service.decide(uow, deployment, project, principal.name, decision, body.note, state.blobs)
    return service.event_to_dict(event)


@router.post(
    "/v1/projects/{project}/deployments/{name}/{version}/approve", status_code=201, response_model=RecordEventRead
)
def approve(
    project: str,
    name: str,
    version: str,
    uow: UowDep,
    principal: PrincipalDep,
    state: StateDep,
    body: Annotated[DecisionBody, Body()] = DecisionBody(),
) -> dict[str, Any]:
    return _decide(project, name, version, body, uow, principal, state, "approved")


@router.post(
    "/v1/projects/{project}/deployments/{name}/{version}/reject", status_code=201, response_model=RecordEventRead
)
def reject(
    project: str,
    name: str,
    version: str,
    uow: UowDep,
    principal: PrincipalDep,
    state: StateDep,
    body: Annotated[DecisionBody, Body()] = DecisionBody(),
) -> dict[str, Any]:
    return _decide(project, name, version, body, uow, principal, state, "rejected")


def _visible(uow: UowDep, principal: PrincipalDep, record_id: str, roles: frozenset[str]) -> tuple[Any, str]:
    record, project_name = records_service.get_visible(uow.session, record_id)
    if not access_service.can_view_project(uow.session, principal, record.project_id):
        raise NotFound(f"record {record_id} not found")
    access_service.project_access(uow.session, principal, project_name, roles)
    return record, project_name


@router.post("/v1/records/{record_id}/revoke", status_code=201, response_model=RevocationRead)
def revoke(record_id: str, body: RevokeBody, uow: UowDep, principal: PrincipalDep) -> dict[str, Any]:
    record, project_name = _visible(uow, principal, record_id, APPROVERS)
    event, downstream = service.revoke(uow, record, project_name, principal.name, body.reason)
    return {**service.event_to_dict(event), "downstream_quarantined": downstream}


@router.get("/v1/records/{record_id}/events", response_model=RecordEventPage)
def events(record_id: str, uow: UowDep, principal: PrincipalDep) -> dict[str, Any]:
    _visible(uow, principal, record_id, VIEW)
    return {
        "items": [service.event_to_dict(e) for e in service.events_of(uow.session, record_id)],
        "next_cursor": None,
    }
