"""Collection routes, generated once per kind, and the by-id routes shared by every kind."""

from __future__ import annotations

import base64
import binascii
import uuid
from enum import Enum
from typing import Annotated

from fastapi import APIRouter, Body, Query, Request, Response
from pydantic import BaseModel

from app.access import service as access_service
from app.api.deps import PrincipalDep, UowDep
from app.api.typed import typed
from app.core.errors import ValidationFailed
from app.kinds.base import KindDefinition
from app.kinds.create import body_of, create_model_of
from app.kinds.criteria import criteria_diff_of
from app.kinds.registry import BY_COLLECTION
from app.kinds.tables import TableLimits
from app.records import reads, service
from app.records.schemas import CriteriaDiffRead, RecordPage, RecordRead, RecordRegistered, to_read

VIEW = frozenset({"viewer"})
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
    body_model = create_model_of(kind)

    def register(
        project: str,
        body: Annotated[BaseModel, Body()],
        request: Request,
        uow: UowDep,
        principal: PrincipalDep,
    ) -> Response:
        state = request.app.state.registry
        project_id = access_service.project_id_with_access(uow.connection, principal, project, kind.write_roles)
        result = service.register(
            uow,
            project_id=project_id,
            project_name=project,
            actor=principal.name,
            kind=kind,
            body=body_of(body),
            store=state.blobs,
            limits=TableLimits.of(state.settings),
        )
        answer = {**reads.as_read_fields(result.fields, project), "audit_leaf_hash": result.audit_leaf_hash}
        return typed(RecordRegistered, answer, status_code=201 if result.created else 200)

    # the body parameter's type is the kind's own model, set here since it is built per kind
    register.__annotations__["body"] = Annotated[body_model, Body()]
    sub.add_api_route(
        prefix,
        register,
        methods=["POST"],
        status_code=201,
        tags=tags,
        summary=f"Register a {kind.name} record",
        response_model=RecordRegistered,
        responses={
            200: {"model": RecordRegistered, "description": "The same content was registered before: that record"}
        },
    )


def _add_collection_routes(sub: APIRouter, kind: KindDefinition) -> None:
    """The collection's routes, added straight onto `sub` (nested routers cost a match per request each)."""
    prefix = "/v1/projects/{project}/" + kind.collection
    tags: list[str | Enum] = [kind.collection]

    # a kind the server builds itself (a handoff package) has its own POST route in its domain package
    if not kind.built_by_server:
        _add_register_route(sub, kind, prefix, tags)

    @sub.get(prefix, tags=tags, summary=f"List {kind.name} records", response_model=RecordPage)
    def list_records(
        project: str,
        uow: UowDep,
        principal: PrincipalDep,
        limit: LimitQuery = 50,
        cursor: str | None = None,
        name: str | None = None,
    ) -> Response:
        after_id = decode_cursor(cursor)
        conn = uow.connection
        project_id = access_service.project_id_with_access(conn, principal, project, VIEW)
        items, last = reads.page(conn, project_id, project, kind.name, name=name, after_id=after_id, limit=limit)
        return typed(RecordPage, {"items": items, "next_cursor": encode_cursor(last)})

    if kind.name == "criteria":

        @sub.get(
            prefix + "/{name}/diff",
            tags=tags,
            summary="Structured diff of two criteria versions and its classification",
            response_model=CriteriaDiffRead,
        )
        def diff(
            project: str,
            name: str,
            uow: UowDep,
            principal: PrincipalDep,
            from_: Annotated[str, Query(alias="from")],
            to: str = "latest",
        ) -> Response:
            access = access_service.project_access(uow.session, principal, project, VIEW)
            old = service.get_in_project(uow.session, access.project.id, "criteria", name, from_)
            new = service.get_in_project(uow.session, access.project.id, "criteria", name, to)
            diff = {"from": old.version, "to": new.version, **criteria_diff_of(old.spec, new.spec)}
            return typed(CriteriaDiffRead, diff)

    @sub.get(
        prefix + "/{name}/{version}",
        tags=tags,
        summary=f"One {kind.name} record; version may be 'latest'",
        response_model=RecordRead,
    )
    def get_record(project: str, name: str, version: str, uow: UowDep, principal: PrincipalDep) -> Response:
        access = access_service.project_access(uow.session, principal, project, VIEW)
        record = service.get_in_project(uow.session, access.project.id, kind.name, name, version)
        return typed(RecordRead, to_read(record, project))


@router.get("/v1/records/{record_id}", tags=["records"], response_model=RecordRead)
def get_by_id(record_id: str, uow: UowDep, principal: PrincipalDep) -> Response:
    return typed(RecordRead, reads.record_by_id(uow.connection, principal, record_id))


for _kind in BY_COLLECTION.values():
    _add_collection_routes(router, _kind)
