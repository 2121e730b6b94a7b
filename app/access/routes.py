from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from app.access import service, tokens
from app.access.schemas import (
    MemberList,
    MemberRead,
    MemberSet,
    MeRead,
    ProjectCreate,
    ProjectList,
    ProjectRead,
    TokenCreate,
    TokenCreated,
    TokenList,
    TokenRead,
)
from app.api.deps import PrincipalDep, StateDep, UowDep
from app.core.db import utcnow

router = APIRouter(prefix="/v1", tags=["access"])

ANY_ROLE = frozenset({"viewer"})
ADMIN = frozenset({"admin"})


@router.get("/me")
def me(uow: UowDep, principal: PrincipalDep) -> MeRead:
    return MeRead(
        principal=principal.name,
        global_admin=principal.is_global_admin,
        roles=service.roles_by_project(uow.session, principal),
    )


@router.post(
    "/projects",
    status_code=201,
    response_model=ProjectRead,
    responses={200: {"model": ProjectRead, "description": "the project exists already with this name"}},
)
def create_project(body: ProjectCreate, uow: UowDep, principal: PrincipalDep, response: Response) -> ProjectRead:
    project, created = service.create_project(uow, principal, body.name, body.description)
    response.status_code = 201 if created else 200
    return ProjectRead.model_validate(project)


@router.get("/projects")
def list_projects(uow: UowDep, principal: PrincipalDep) -> ProjectList:
    projects = service.list_projects(uow.session, principal)
    return ProjectList(items=[ProjectRead.model_validate(p) for p in projects])


@router.get("/projects/{project}")
def get_project(project: str, uow: UowDep, principal: PrincipalDep) -> ProjectRead:
    access = service.project_access(uow.session, principal, project, ANY_ROLE)
    return ProjectRead.model_validate(access.project)


@router.put("/projects/{project}/members/{member}")
def set_member(project: str, member: str, body: MemberSet, uow: UowDep, principal: PrincipalDep) -> MemberRead:
    access = service.project_access(uow.session, principal, project, ADMIN)
    service.set_member(uow, access, principal, member, body.role)
    return MemberRead(principal=member, role=body.role)


@router.get("/projects/{project}/members")
def list_members(project: str, uow: UowDep, principal: PrincipalDep) -> MemberList:
    access = service.project_access(uow.session, principal, project, ADMIN)
    return MemberList(items=[MemberRead(**m) for m in service.list_members(uow.session, access.project)])


@router.post("/tokens", status_code=201, tags=["tokens"])
def create_token(body: TokenCreate, uow: UowDep, caller: PrincipalDep, state: StateDep) -> TokenCreated:
    """A new token for the caller (a global admin: for the principal named). The secret is in this
    answer only; RLHF_REGISTRY_TOKEN_MAX_DAYS, when set, caps and defaults the expiry."""
    view, secret = tokens.create(
        uow,
        caller,
        principal_name=body.principal,
        label=body.label,
        expires_in_days=body.expires_in_days,
        expires_at=body.expires_at,
        max_days=state.settings.token_max_days,
        parent_expires_at=caller.token_expires_at,
    )
    return TokenCreated(**_token_read(view).model_dump(), token=secret)


@router.get("/tokens", tags=["tokens"])
def list_tokens(
    uow: UowDep,
    caller: PrincipalDep,
    everyone: Annotated[bool, Query(alias="all", description="every principal's tokens (global admin)")] = False,
    principal: Annotated[str | None, Query(description="one principal's tokens (global admin)")] = None,
) -> TokenList:
    """The caller's tokens, without secrets or hashes."""
    views = tokens.list_tokens(uow.session, caller, everyone=everyone, principal_name=principal)
    return TokenList(items=[_token_read(view) for view in views])


@router.post("/tokens/{token_id}/revoke", tags=["tokens"])
def revoke_token(token_id: str, uow: UowDep, caller: PrincipalDep) -> TokenRead:
    """Revoke a token of the caller's (a global admin: anyone's); its next use is 401. Another
    principal's token is 404, as if it did not exist."""
    return _token_read(tokens.revoke(uow, caller, token_id))


def _token_read(view: tokens.TokenView) -> TokenRead:
    token = view.token
    return TokenRead(
        id=token.id,
        principal=view.principal,
        label=token.label,
        created_at=token.created_at,
        expires_at=token.expires_at,
        revoked_at=token.revoked_at,
        state=view.state(utcnow()),
    )
