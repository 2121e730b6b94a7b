from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from app.access import service as access_service
from app.api.deps import PrincipalDep, StateDep, UowDep
from app.audit import service
from app.core.errors import Forbidden, ValidationFailed

router = APIRouter(prefix="/v1", tags=["audit"])
VIEW = frozenset({"viewer"})


@router.get("/audit")
def list_audit(
    uow: UowDep,
    principal: PrincipalDep,
    project: str | None = None,
    record: str | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    if project is not None:
        access_service.project_access(uow.session, principal, project, VIEW)
    visible = None if principal.is_global_admin else list(access_service.roles_by_project(uow.session, principal))
    if cursor is not None and not cursor.isdigit():
        raise ValidationFailed("cursor must be an event index", errors=[{"loc": ["query", "cursor"], "msg": "bad"}])
    events = service.page(
        uow.session,
        projects=visible,
        project=project,
        record=record,
        after=None if cursor is None else int(cursor),
        limit=limit,
    )
    items = [service.event_to_dict(e) for e in events]
    next_cursor = str(items[-1]["index"]) if len(items) == limit else None
    return {"items": items, "next_cursor": next_cursor}


@router.get("/audit/verify")
def verify(uow: UowDep, principal: PrincipalDep) -> dict[str, Any]:
    if (
        not principal.is_global_admin
        and "admin" not in access_service.roles_by_project(uow.session, principal).values()
    ):
        raise Forbidden("verifying the audit log needs the admin role")
    result = service.verify_log(uow.session)
    return {
        "ok": result.ok,
        "tree_size": result.tree_size,
        "root_hash": result.root_hash,
        "chain_hash": result.chain_hash,
        "first_bad_index": result.first_bad_index,
        "problem": result.problem,
    }


@router.get("/signing-key")
def signing_key(state: StateDep, principal: PrincipalDep) -> dict[str, str]:
    key = state.signing_key
    return {"key_id": key.key_id, "algorithm": "ed25519", "public_key_pem": key.public_key_pem()}
