from __future__ import annotations

from fastapi import APIRouter, Response

from app.access import service
from app.access.schemas import (
    MemberList,
    MemberRead,
    MemberSet,
    MeRead,
    ProjectCreate,
    ProjectList,
    ProjectRead,
)
from app.api.deps import PrincipalDep, UowDep

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


@router.post("/projects", status_code=201)
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
