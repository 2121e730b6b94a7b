"""The blinded tasks of an evaluation campaign, downloaded in the layout an evaluation tool loads."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from app.access import service as access_service
from app.api.deps import PrincipalDep, StateDep, UowDep
from app.evaluations.formats import Format, export_tasks
from app.evaluations.tasks import load_tasks
from app.records import service as records_service

router = APIRouter(tags=["evaluation-campaigns"])
VIEW = frozenset({"viewer"})
NDJSON = "application/x-ndjson"
JSON = "application/json"
# media type and file extension of each export
MEDIA: dict[str, tuple[str, str]] = {
    "jsonl": (NDJSON, "jsonl"),
    "label-studio": (JSON, "json"),
    "argilla": (JSON, "json"),
}


def _text(description: str) -> dict[str, str]:
    return {"type": "string", "description": description}


BLINDED_TASK: dict[str, Any] = {
    "title": "BlindedTask",
    "type": "object",
    "required": ["task_id", "prompt", "response_a", "response_b"],
    "properties": {
        "task_id": _text("the task's id, which the judgments name"),
        "prompt": _text("the prompt both responses answer"),
        "response_a": _text("Response A, shown on the left"),
        "response_b": _text("Response B, shown on the right"),
    },
}
LABEL_STUDIO_TASK: dict[str, Any] = {
    "title": "LabelStudioTask",
    "type": "object",
    "required": ["data"],
    "properties": {"data": BLINDED_TASK},
}
ARGILLA_RECORD: dict[str, Any] = {
    "title": "ArgillaRecord",
    "type": "object",
    "required": ["id", "fields"],
    "properties": {
        "id": _text("the task's id"),
        "fields": {
            "title": "ArgillaFields",
            "type": "object",
            "required": ["prompt", "response_a", "response_b"],
            "properties": {name: BLINDED_TASK["properties"][name] for name in ("prompt", "response_a", "response_b")},
        },
    },
}


class TasksResponse(Response):
    """A campaign's blinded tasks as an attachment; as the route's response class it documents JSON lines."""

    media_type = NDJSON


@router.get(
    "/v1/projects/{project}/evaluation-campaigns/{name}/{version}/tasks",
    summary="Download an evaluation campaign's blinded tasks (JSON lines, Label Studio or Argilla)",
    response_class=TasksResponse,
    responses={
        200: {
            "description": "The blinded tasks as an attachment: one BlindedTask per line (`jsonl`), or a JSON list "
            "of Label Studio tasks (`label-studio`) or of Argilla records (`argilla`)",
            "content": {
                NDJSON: {"schema": BLINDED_TASK},
                JSON: {
                    "schema": {
                        "oneOf": [
                            {"type": "array", "items": LABEL_STUDIO_TASK},
                            {"type": "array", "items": ARGILLA_RECORD},
                        ]
                    }
                },
            },
        }
    },
)
def tasks(
    project: str,
    name: str,
    version: str,
    uow: UowDep,
    principal: PrincipalDep,
    state: StateDep,
    fmt: Annotated[Format, Query(alias="format")] = "jsonl",
) -> Response:
    """The tasks as evaluators see them: ids, prompts and Response A / B, never which model wrote which."""
    access = access_service.project_access(uow.session, principal, project, VIEW)
    campaign = records_service.get_in_project(uow.session, access.project.id, "evaluation_campaign", name, version)
    media, extension = MEDIA[fmt]
    body = export_tasks(load_tasks(campaign, state.blobs), fmt)
    filename = f"{campaign.name}-v{campaign.version}-{fmt}.{extension}"
    return Response(body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{filename}"'})
