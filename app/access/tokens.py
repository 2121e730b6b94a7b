"""The lifecycle of API tokens: created for oneself (a global admin: for any principal), listed without
their secrets, revoked by their owner or a global admin. A token the caller may not see is 404, as a
project is (API.md, Conventions); expiry is checked where tokens are authenticated
(`app.access.service.authenticate`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy.orm import Session

from app.access import repository
from app.access.models import ApiToken
from app.access.service import PRINCIPAL_NAME_RE, Identity, issue_token
from app.core.db import utcnow
from app.core.errors import Forbidden, NotFound, ValidationFailed
from app.core.uow import UnitOfWork

TOKEN_ID_RE = re.compile(r"^[0-9a-f-]{36}$")


@dataclass(frozen=True)
class TokenView:
    """A stored token with its principal's name: what listings show (never the hash)."""

    token: ApiToken
    principal: str

    def state(self, now: datetime) -> Literal["active", "expired", "revoked"]:
        if self.token.revoked_at is not None:
            return "revoked"
        if self.token.expires_at is not None and self.token.expires_at <= now:
            return "expired"
        return "active"


def expiry(
    *,
    expires_in_days: int | None,
    expires_at: datetime | None,
    max_days: int | None,
    now: datetime,
    parent_expires_at: datetime | None = None,
) -> datetime | None:
    """When a new token expires: as asked, else never, or at the earliest of two caps, which no asked
    expiry may exceed: the server's maximum lifetime of `max_days`, and `parent_expires_at`, the expiry
    of the token that authenticated the request (a token that expires cannot create one that outlives
    it)."""
    if expires_in_days is not None:
        expires_at = now + timedelta(days=expires_in_days)
    if expires_at is not None and expires_at <= now:
        raise ValidationFailed(
            "a token's expiry must be in the future",
            errors=[{"loc": ["body", "expires_at"], "msg": "not in the future"}],
        )
    caps: list[tuple[datetime, str]] = []
    if max_days is not None:
        caps.append((now + timedelta(days=max_days), f"this server issues tokens for at most {max_days} days"))
    if parent_expires_at is not None:
        why = f"a token may not outlive the token that creates it, which expires at {parent_expires_at.isoformat()}"
        caps.append((parent_expires_at, why))
    if not caps:
        return expires_at
    latest, why = min(caps, key=lambda cap: cap[0])
    if expires_at is None:
        return latest
    if expires_at > latest:
        raise ValidationFailed(why, errors=[{"loc": ["body", "expires_at"], "msg": "later than a token may live"}])
    return expires_at


def create(
    uow: UnitOfWork,
    caller: Identity,
    *,
    principal_name: str | None,
    label: str,
    expires_in_days: int | None,
    expires_at: datetime | None,
    max_days: int | None,
    parent_expires_at: datetime | None,
    now: datetime | None = None,
) -> tuple[TokenView, str]:
    """A new token and its secret, for the caller or (a global admin only) for `principal_name`.

    `parent_expires_at` is the expiry of the token the caller authenticated with (None: it never
    expires, or the caller is no request's, as on the command line). The new token expires no later,
    whoever it is for: a global admin's token for another principal is capped as one for itself, so
    no token, however it was created, yields a credential that outlives it."""
    now = now or utcnow()
    owner = _owner(uow.session, caller, principal_name)
    when = expiry(
        expires_in_days=expires_in_days,
        expires_at=expires_at,
        max_days=max_days,
        now=now,
        parent_expires_at=parent_expires_at,
    )
    row, secret = issue_token(uow, owner, actor=caller.name, label=label, expires_at=when, now=now)
    return TokenView(row, owner.name), secret


def _owner(session: Session, caller: Identity, principal_name: str | None) -> Identity:
    if principal_name is None or principal_name == caller.name:
        return caller
    if not caller.is_global_admin:
        raise Forbidden("only a global admin creates tokens for another principal")
    owner = session.scalar(repository.principal_by_name(principal_name))
    if owner is None:
        # a reference in the body that names nothing is invalid input, as elsewhere in the API
        raise ValidationFailed(
            f"principal {principal_name!r} not found",
            errors=[{"loc": ["body", "principal"], "msg": "no such principal"}],
        )
    return owner


def list_tokens(
    session: Session, caller: Identity, *, everyone: bool = False, principal_name: str | None = None
) -> list[TokenView]:
    """The caller's own tokens; a global admin's `everyone` lists all, `principal_name` one principal's."""
    others = everyone or (principal_name is not None and principal_name != caller.name)
    if others and not caller.is_global_admin:
        raise Forbidden("only a global admin lists other principals' tokens")
    if principal_name is not None and principal_name != caller.name:
        if not PRINCIPAL_NAME_RE.fullmatch(principal_name):
            return []  # no principal has such a name
        owner = session.scalar(repository.principal_by_name(principal_name))
        if owner is None:
            return []
        stmt = repository.tokens(principal_id=owner.id)
    else:
        stmt = repository.tokens(principal_id=None if everyone else caller.id)
    return [TokenView(token, name) for token, name in session.execute(stmt)]


def revoke(uow: UnitOfWork, caller: Identity, token_id: str, *, now: datetime | None = None) -> TokenView:
    """Revoke a token at once (its next request is 401). Revoking a revoked token changes nothing."""
    found = None
    if TOKEN_ID_RE.match(token_id):  # anything else is no token id (and not for the database to parse)
        stmt = repository.tokens(token_id=token_id).with_for_update(of=ApiToken)
        found = uow.session.execute(stmt).first()
    if found is None or not (caller.is_global_admin or found[0].principal_id == caller.id):
        raise NotFound(f"token {token_id!r} not found")
    token, principal = found
    if token.revoked_at is None:
        token.revoked_at = now or utcnow()
        uow.session.flush()
        uow.audit(
            actor=caller.name,
            action="token.revoked",
            target=f"token:{token.id}",
            project=None,
            payload={"token_id": token.id, "principal": principal},
        )
    return TokenView(token, principal)
