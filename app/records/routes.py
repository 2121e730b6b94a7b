"""Collection routes, generated once per kind, and the by-id routes shared by every kind."""

from __future__ import annotations

import base64
import binascii
import uuid
from enum import Enum
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel

from app.access import service as access_service
from app.access.service import Actor
from app.api.deps import AuthorizationHeader, PrincipalDep, UowDep, reading, writing
from app.api.direct import DirectRoute
from app.core.errors import ValidationFailed
from app.core.uow import UnitOfWork
from app.kinds.base import KindDefinition
from app.kinds.criteria import criteria_diff_of
from app.kinds.registry import BY_COLLECTION
from app.kinds.tables import TableLimits
from app.records import reads, service
from app.records.schemas import RecordPage, RecordRead, to_read

VIEW = frozenset({"viewer"})
JSON_OBJECT_BODY = {
    "required": True,
    "content": {"application/json": {"schema": {"type": "object", "additionalProperties": True, "title": "Body"}}},
}
LimitQuery = Annotated[int, Query(ge=1, le=500)]

router = APIRouter()


def encode_cursor(record_id: str | None) -> str | None:
    return None if record_id is None else base64.urlsafe_b64encode(record_id.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    try:
        record_id = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_", validate=True).decode()
        uuid.UUID(record_id)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise ValidationFailed(
            "cursor is not one this server issued", errors=[{"loc": ["query", "cursor"], "msg": "bad cursor"}]
        ) from None
    return record_id


def _add_register_route(sub: APIRouter, kind: KindDefinition, prefix: str, tags: list[str | Enum]) -> None:
    summary = f"Register a {kind.name} record"

    async def register(project: str, request: Request, authorization: AuthorizationHeader = None) -> Response:
        store = request.app.state.registry.blobs
        limits = TableLimits.of(request.app.state.registry.settings)

        def work(uow: UnitOfWork, principal: Actor, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
            project_id = access_service.project_id_with_access(uow.connection, principal, project, kind.write_roles)
            result = service.register(
                uow,
                project_id=project_id,
                project_name=project,
                actor=principal.name,
                kind=kind,
                body=body,
                store=store,
                limits=limits,
            )
            return reads.as_read_fields(result.fields, project), result.created

        fields, created = await writing(request, authorization, work, quick=kind.quick)
        return json_response(RecordRead, fields, status_code=201 if created else 200)

    # called directly (app/api/direct.py): the body is read and checked by `writing`, and FastAPI's
    # request handling cost more than a policy's pipeline; the OpenAPI operation is FastAPI's as usual
    sub.add_api_route(
        prefix,
        register,
        methods=["POST"],
        status_code=201,
        tags=tags,
        summary=summary,
        response_model=RecordRead,
        responses={200: {"model": RecordRead, "description": "The same content was registered before: that record"}},
        openapi_extra={"requestBody": JSON_OBJECT_BODY},
        route_class_override=DirectRoute,
    )


def _add_collection_routes(sub: APIRouter, kind: KindDefinition) -> None:
    """The collection's routes, added straight onto `sub` (nested routers cost a match per request each)."""
    prefix = "/v1/projects/{project}/" + kind.collection
    tags: list[str | Enum] = [kind.collection]

    # a kind the server builds itself (a handoff package) has its own POST route in its domain package
    if not getattr(kind, "built_by_server", False):
        _add_register_route(sub, kind, prefix, tags)

    @sub.get(prefix, tags=tags, summary=f"List {kind.name} records", response_model=RecordPage)
    async def list_records(
        project: str,
        request: Request,
        authorization: AuthorizationHeader = None,
        limit: LimitQuery = 50,
        cursor: str | None = None,
        name: str | None = None,
    ) -> Response:
        after_id = decode_cursor(cursor)
        with reading(request, authorization) as (conn, principal):
            project_id = access_service.project_id_with_access(conn, principal, project, VIEW)
            items, last = reads.page(conn, project_id, project, kind.name, name=name, after_id=after_id, limit=limit)
        return json_response(RecordPage, {"items": items, "next_cursor": encode_cursor(last)})

    if kind.name == "criteria":

        @sub.get(
            prefix + "/{name}/diff",
            tags=tags,
            summary="Structured diff of two criteria versions and its classification",
        )
        def diff(
            project: str,
            name: str,
            uow: UowDep,
            principal: PrincipalDep,
            from_: Annotated[str, Query(alias="from")],
            to: str = "latest",
        ) -> dict[str, Any]:
            access = access_service.project_access(uow.session, principal, project, VIEW)
            old = service.get_in_project(uow.session, access.project.id, "criteria", name, from_)
            new = service.get_in_project(uow.session, access.project.id, "criteria", name, to)
            return {"from": old.version, "to": new.version, **criteria_diff_of(old.spec, new.spec)}

    @sub.get(prefix + "/{name}/{version}", tags=tags, summary=f"One {kind.name} record; version may be 'latest'")
    async def get_record(project: str, name: str, version: str, uow: UowDep, principal: PrincipalDep) -> RecordRead:
        access = access_service.project_access(uow.session, principal, project, VIEW)
        record = service.get_in_project(uow.session, access.project.id, kind.name, name, version)
        return to_read(record, project)


# Single-record reads and list pages run on the event loop: their queries are one or two index lookups,
# and two thread-pool hops (the handler, then the response's serialisation) cost more than the work.
@router.get("/v1/records/{record_id}", tags=["records"], response_model=RecordRead)
async def get_by_id(record_id: str, request: Request, authorization: AuthorizationHeader = None) -> Response:
    with reading(request, authorization) as (conn, principal):
        record = reads.record_by_id(conn, principal, record_id)
    return json_response(RecordRead, record)


def json_response(model: type[BaseModel], fields: dict[str, Any], *, status_code: int = 200) -> Response:
    """`model` validated from plain fields and serialised in one pass of pydantic's core."""
    body = model.model_validate(fields).model_dump_json()
    return Response(body, status_code=status_code, media_type="application/json")


for _kind in BY_COLLECTION.values():
    _add_collection_routes(router, _kind)
