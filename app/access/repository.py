from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, select

from app.access.models import ApiToken, Membership, Principal, Project

# Statements run on every request are built once, with bind parameters (SQLAlchemy's compiled cache
# then serves them).
# Revoked and expired tokens are found too, so that the answer can say which (the hash is unique: one
# index seek either way).
PRINCIPAL_BY_TOKEN_HASH: Select[str, str, bool, str, datetime | None, datetime | None] = (
    select(
        Principal.id,
        Principal.name,
        Principal.is_global_admin,
        ApiToken.id,
        ApiToken.revoked_at,
        ApiToken.expires_at,
    )
    .join(ApiToken, ApiToken.principal_id == Principal.id)
    .where(ApiToken.token_hash == bindparam("token_hash"))
)


def _project_by_name_with_role(project: Any) -> Select[Any]:
    """`project` (the entity or a column) of the project named :name, with the role :principal_id holds
    there (NULL when none)."""
    return (
        select(project, Membership.role)
        .outerjoin(
            Membership,
            (Membership.project_id == Project.id) & (Membership.principal_id == bindparam("principal_id")),
        )
        .where(Project.name == bindparam("name"))
    )


PROJECT_WITH_ROLE: Select[Project, str | None] = _project_by_name_with_role(Project)
PROJECT_ID_WITH_ROLE: Select[str, str | None] = _project_by_name_with_role(Project.id)
ROLE_IN_PROJECT: Select[str] = select(Membership.role).where(
    Membership.project_id == bindparam("project_id"), Membership.principal_id == bindparam("principal_id")
)


def visible_projects(principal_id: str, global_admin: bool) -> Select[Project]:
    stmt = select(Project).order_by(Project.name)
    if not global_admin:
        stmt = stmt.join(Membership, Membership.project_id == Project.id).where(Membership.principal_id == principal_id)
    return stmt


def roles_of(principal_id: str) -> Select[str, str]:
    return (
        select(Project.name, Membership.role)
        .join(Membership, Membership.project_id == Project.id)
        .where(Membership.principal_id == principal_id)
        .order_by(Project.name)
    )


def members_of(project_id: str) -> Select[str, str]:
    return (
        select(Principal.name, Membership.role)
        .join(Membership, Membership.principal_id == Principal.id)
        .where(Membership.project_id == project_id)
        .order_by(Principal.name)
    )


def tokens(*, principal_id: str | None = None, token_id: str | None = None) -> Select[ApiToken, str]:
    """Tokens with their principal's name, oldest first; all of them unless filtered."""
    stmt = select(ApiToken, Principal.name).join(Principal, Principal.id == ApiToken.principal_id)
    if principal_id is not None:
        stmt = stmt.where(ApiToken.principal_id == principal_id)
    if token_id is not None:
        stmt = stmt.where(ApiToken.id == token_id)
    return stmt.order_by(ApiToken.created_at, ApiToken.id)


def principal_by_name(name: str) -> Select[Principal]:
    return select(Principal).where(Principal.name == name)
