"""Principals, tokens, projects and roles. 404 for what a principal cannot see, 403 for what it can see
but lacks the role for (API.md, Conventions)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from app.access import repository
from app.access.models import ApiToken, Membership, Principal, Project
from app.core import names
from app.core.db import utcnow
from app.core.errors import (
    Forbidden,
    NotFound,
    RunTokenScope,
    Unauthenticated,
    ValidationFailed,
    VersionConflict,
)
from app.core.security import ROLES, RUN_TOKEN_PREFIX, bearer_secret, hash_token, new_token, role_satisfies
from app.core.uow import UnitOfWork

PRINCIPAL_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,199}$")


class Identity(Protocol):
    """What access decisions read of a principal: an ORM `Principal` or the `Actor` of a request."""

    @property
    def id(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def is_global_admin(self) -> bool: ...


@dataclass(frozen=True)
class Actor:
    """The authenticated principal of a request: three columns, not an ORM entity (it is read on every
    request, and loading an entity costs more than the query)."""

    id: str
    name: str
    is_global_admin: bool
    token_id: str | None = None  # the token the request authenticated with: audit events and logs name it
    token_expires_at: datetime | None = None  # that token's expiry: no token it creates may outlive it


@dataclass(frozen=True)
class ProjectAccess:
    project: Project
    role: str  # "admin" for a global admin


def authenticate(session: Session | Connection, authorization: str | None, *, now: datetime | None = None) -> Actor:
    """The principal of a bearer token. A token that is unknown, revoked or expired (at `now`, the
    current time unless given) is 401, and the detail says which of the three, nothing more."""
    token = bearer_secret(authorization)
    if token is None:
        raise Unauthenticated("send an Authorization: Bearer <token> header")
    if token.startswith(RUN_TOKEN_PREFIX):
        # an external run's token (app.runs.external) is good for that run's own routes, nothing else
        raise RunTokenScope(
            "a run token is good only for its run's routes (inputs, events, blobs, checkpoints, finish)"
        )
    conn = session.connection() if isinstance(session, Session) else session
    row = conn.execute(repository.PRINCIPAL_BY_TOKEN_HASH, {"token_hash": hash_token(token)}).first()
    if row is None:
        raise Unauthenticated("the bearer token is unknown")
    if row[4] is not None:
        raise Unauthenticated("the bearer token has been revoked")
    if row[5] is not None and row[5] <= (now or utcnow()):
        raise Unauthenticated("the bearer token has expired")
    return Actor(id=row[0], name=row[1], is_global_admin=bool(row[2]), token_id=row[3], token_expires_at=row[5])


def project_access(session: Session, principal: Identity, name: str, allowed: frozenset[str]) -> ProjectAccess:
    row = session.execute(repository.PROJECT_WITH_ROLE, {"name": name, "principal_id": principal.id}).first()
    if row is None:
        raise _no_project(name)
    return ProjectAccess(row[0], _granted_role(principal, name, row[1], allowed))


def project_id_with_access(conn: Connection, principal: Identity, name: str, allowed: frozenset[str]) -> str:
    """`project_access` for the hot routes (registrations, list pages): the project's id only, read with
    a Core statement on the unit's connection."""
    row = conn.execute(repository.PROJECT_ID_WITH_ROLE, {"name": name, "principal_id": principal.id}).first()
    if row is None:
        raise _no_project(name)
    _granted_role(principal, name, row[1], allowed)
    return str(row[0])


def _no_project(name: str) -> NotFound:
    return NotFound(f"project {name!r} not found")


def _granted_role(principal: Identity, name: str, held: str | None, allowed: frozenset[str]) -> str:
    """The role that grants access to an existing project: 404 when the principal holds none there (it
    cannot see the project), 403 when it holds one that is not allowed."""
    role = "admin" if principal.is_global_admin else held
    if role is None:
        raise _no_project(name)
    if not role_satisfies(role, allowed):
        raise Forbidden(
            f"this needs one of the roles {sorted(allowed)} in project {name!r}; you hold {role!r}",
            extra={"required_roles": sorted(allowed), "role": role},
        )
    return role


def can_view_project(session: Session, principal: Identity, project_id: str) -> bool:
    if principal.is_global_admin:
        return True
    params = {"project_id": project_id, "principal_id": principal.id}
    return session.execute(repository.ROLE_IN_PROJECT, params).first() is not None


def holds_any_role(session: Session, principal: Identity, allowed: frozenset[str]) -> bool:
    if principal.is_global_admin:
        return True
    return any(role_satisfies(role, allowed) for _, role in session.execute(repository.roles_of(principal.id)))


def get_or_create_principal(uow: UnitOfWork, name: str, *, actor: str, global_admin: bool = False) -> Principal:
    if not PRINCIPAL_NAME_RE.fullmatch(name):
        raise ValidationFailed(f"principal name {name!r} must match {PRINCIPAL_NAME_RE.pattern}")
    principal = uow.session.execute(select(Principal).where(Principal.name == name)).scalar()
    if principal is None:
        principal = Principal(name=name, is_global_admin=global_admin)
        uow.session.add(principal)
        uow.session.flush()
        uow.audit(
            actor=actor,
            action="principal.created",
            target=f"principal:{name}",
            project=None,
            payload={"name": name, "global_admin": global_admin},
        )
    elif global_admin and not principal.is_global_admin:
        principal.is_global_admin = True
        uow.audit(
            actor=actor,
            action="principal.global_admin_granted",
            target=f"principal:{name}",
            project=None,
            payload={"name": name},
        )
    return principal


def create_token(
    uow: UnitOfWork, principal: Identity, *, actor: str, label: str = "", expires_at: datetime | None = None
) -> str:
    """A new token for `principal`; the secret is returned, only its hash is stored."""
    return issue_token(uow, principal, actor=actor, label=label, expires_at=expires_at)[1]


def issue_token(
    uow: UnitOfWork,
    principal: Identity,
    *,
    actor: str,
    label: str,
    expires_at: datetime | None,
    now: datetime | None = None,
) -> tuple[ApiToken, str]:
    """The stored token and its secret. The audit event names the token by id (never by secret)."""
    secret = new_token()
    row = ApiToken(
        principal_id=principal.id,
        token_hash=hash_token(secret),
        label=label,
        expires_at=expires_at,
        created_at=now or utcnow(),
    )
    uow.session.add(row)
    uow.session.flush()
    uow.audit(
        actor=actor,
        action="token.created",
        target=f"token:{row.id}",
        project=None,
        payload={
            "token_id": row.id,
            "principal": principal.name,
            "label": label,
            "expires_at": None if expires_at is None else expires_at.isoformat(),
        },
    )
    return row, secret


def create_project(uow: UnitOfWork, principal: Identity, name: str, description: str) -> tuple[Project, bool]:
    """Create a project; posting the same name and description again returns it (idempotent)."""
    if not principal.is_global_admin:
        raise Forbidden("only a global admin creates projects")
    names.check_project_name(name, loc=["body", "name"])
    existing = uow.session.execute(select(Project).where(Project.name == name)).scalar()
    if existing is not None:
        if existing.description == description:
            return existing, False
        raise VersionConflict(f"project {name!r} already exists with another description")
    project = Project(name=name, description=description, created_by=principal.name)
    uow.session.add(project)
    uow.session.flush()
    uow.audit(
        actor=principal.name,
        action="project.created",
        target=f"project:{name}",
        project=name,
        payload={"name": name, "description": description},
    )
    return project, True


def list_projects(session: Session, principal: Identity) -> list[Project]:
    return list(session.scalars(repository.visible_projects(principal.id, principal.is_global_admin)))


def set_member(uow: UnitOfWork, access: ProjectAccess, actor: Identity, member_name: str, role: str) -> None:
    if role not in ROLES:
        raise ValidationFailed(
            f"role {role!r} is not one of {list(ROLES)}",
            errors=[{"loc": ["body", "role"], "msg": f"must be one of {list(ROLES)}"}],
        )
    member = get_or_create_principal(uow, member_name, actor=actor.name)
    project = access.project
    row = uow.session.get(Membership, (project.id, member.id))
    if row is None:
        uow.session.add(Membership(project_id=project.id, principal_id=member.id, role=role))
    else:
        row.role = role
        row.updated_at = utcnow()
    uow.audit(
        actor=actor.name,
        action="member.role_set",
        target=f"principal:{member_name}",
        project=project.name,
        payload={"principal": member_name, "role": role},
    )


def list_members(session: Session, project: Project) -> list[dict[str, str]]:
    return [{"principal": n, "role": r} for n, r in session.execute(repository.members_of(project.id))]


def roles_by_project(session: Session, principal: Identity) -> dict[str, str]:
    return {name: role for name, role in session.execute(repository.roles_of(principal.id))}
