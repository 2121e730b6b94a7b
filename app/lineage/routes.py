"""The lineage route: a record's trace upstream or downstream, as JSON, Graphviz DOT or Mermaid."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from app.access import service as access_service
from app.api.deps import PrincipalDep, UowDep
from app.api.typed import typed
from app.core.errors import NotFound
from app.lineage import formats, service
from app.lineage.schemas import LineageRead
from app.records import service as records_service

router = APIRouter(tags=["lineage"])
VIEW = frozenset({"viewer"})


@router.get(
    "/v1/records/{record_id}/lineage",
    response_model=LineageRead,
    responses={
        200: {
            "description": "The lineage graph: JSON, or Graphviz DOT or Mermaid text as `format` asks",
            "content": {
                "text/vnd.graphviz": {"schema": {"type": "string"}},
                "text/plain": {"schema": {"type": "string"}},
            },
        }
    },
)
def lineage(
    record_id: str,
    uow: UowDep,
    principal: PrincipalDep,
    direction: Literal["upstream", "downstream"] = "upstream",
    fmt: Annotated[Literal["json", "dot", "mermaid"], Query(alias="format")] = "json",
) -> Response:
    record, project_name = records_service.get_visible(uow.session, record_id)
    # a record of a project the caller cannot see is not found, as if it did not exist
    if not access_service.can_view_project(uow.session, principal, record.project_id):
        raise NotFound(f"record {record_id} not found")
    access_service.project_access(uow.session, principal, project_name, VIEW)
    graph = service.trace(uow.session, record, direction, {record.project_id: project_name})
    if fmt == "dot":
        return Response(formats.to_dot(graph), media_type="text/vnd.graphviz")
    if fmt == "mermaid":
        return Response(formats.to_mermaid(graph), media_type="text/plain")
    return typed(LineageRead, graph)
