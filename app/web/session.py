"""Signing in to the pages: the cookie holds the API token itself, so every page request authenticates
exactly as a bearer request does (same principal, same roles) and a revoked token signs the browser out
at its next request. HttpOnly (no script reads it), SameSite=Lax (no cross-site form posts carry it),
scoped to /web (the REST API never reads cookies)."""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request, Response

from app.access import service as access_service
from app.access.service import Actor
from app.api.deps import UowDep, note_token
from app.core.errors import Unauthenticated

COOKIE = "rlhf_registry_session"
CSRF_COOKIE = "rlhf_registry_csrf"
COOKIE_PATH = "/web"
SIGN_IN = "/web/sign-in"
SIGN_OUT = "/web/sign-out"
HOME = "/web/"


class SignInRequired(Exception):
    """Raised by the page dependency; the web route class answers it with a redirect to the sign-in page."""


def bearer(token: str) -> str:
    return f"Bearer {token.strip()}"


def _cookie_actor(request: Request, uow: UowDep) -> Actor:
    """The principal of the session cookie, authenticated on the unit's connection (in the thread pool)."""
    token = request.cookies.get(COOKIE)
    if not token:
        raise SignInRequired
    try:
        actor = access_service.authenticate(uow.connection, bearer(token))
    except Unauthenticated:
        raise SignInRequired from None
    uow.token_id = actor.token_id
    return actor


async def get_web_actor(request: Request, actor: Annotated[Actor, Depends(_cookie_actor)]) -> Actor:
    note_token(request, actor)
    return actor


WebActorDep = Annotated[Actor, Depends(get_web_actor)]


def set_session(response: Response, request: Request, token: str) -> None:
    response.set_cookie(
        COOKIE,
        token.strip(),
        httponly=True,
        samesite="lax",
        # production runs behind TLS (often a proxy that speaks plain HTTP to us): always Secure there
        secure=request.url.scheme == "https" or request.app.state.registry.settings.environment == "production",
        path=COOKIE_PATH,
    )


def new_csrf() -> str:
    return secrets.token_urlsafe(24)


def set_csrf(response: Response, request: Request, value: str, *, path: str = SIGN_IN) -> None:
    """The double-submit token of the sign-in form (and, scoped to its own path, of the sign-out form):
    a cookie only this site's pages can set, echoed by the form. A cross-site post cannot read it, so it
    cannot sign the browser in as another principal, nor sign it out."""
    response.set_cookie(
        CSRF_COOKIE,
        value,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https" or request.app.state.registry.settings.environment == "production",
        path=path,
    )


def csrf_matches(request: Request, submitted: str) -> bool:
    expected = request.cookies.get(CSRF_COOKIE, "")
    return bool(expected) and hmac.compare_digest(expected.encode(), submitted.encode())


def clear_session(response: Response) -> None:
    response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="lax")


def clear_csrf(response: Response, *, path: str) -> None:
    response.delete_cookie(CSRF_COOKIE, path=path, httponly=True, samesite="strict")


def safe_next(target: str | None) -> str:
    """Where to go after signing in: only a path of these pages, never another site."""
    if not target:
        return HOME
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/web") or target.startswith("//"):
        return HOME
    if parts.path.startswith(SIGN_IN):
        return HOME
    return target


def sign_in_url(request: Request) -> str:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"{SIGN_IN}?next={quote(here, safe='/')}"
