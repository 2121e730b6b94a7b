"""How every page answers: HTML rendered from the shared environment, security headers, a redirect to
the sign-in page when the session is missing, and an HTML error page (same status, same `code`) where
the REST API would send problem+json."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute

from app.access.service import Identity
from app.api.errors import problem_response
from app.core.errors import AppError, Unauthenticated
from app.web.session import SignInRequired, clear_session, sign_in_url
from app.web.templating import render

# Pages load only their own CSS and script; inline SVG uses presentation attributes and classes, so no
# inline style or script is needed anywhere.
PAGE_CSP = (
    "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": PAGE_CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def page(
    request: Request, template: str, *, actor: Identity | None, status_code: int = 200, **context: Any
) -> HTMLResponse:
    html = render(template, request_path=request.url.path, actor=actor, **context)
    return HTMLResponse(html, status_code=status_code)


def wants_json(request: Request) -> bool:
    return request.url.path.endswith(".json")


class WebRoute(APIRoute):
    """Every web route: signed-out requests go to the sign-in page (JSON endpoints answer 401), domain
    errors render as an HTML page, and every response carries the security headers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def web_handler(request: Request) -> Response:
            try:
                response = await handler(request)
            except SignInRequired:
                if wants_json(request):
                    response = problem_response(Unauthenticated("sign in again: the session ended"))
                else:
                    response = RedirectResponse(sign_in_url(request), status_code=303)
                if request.cookies:
                    clear_session(response)
            except AppError as exc:
                if wants_json(request):
                    response = problem_response(exc)
                else:
                    response = page(request, "web/error.html", actor=None, status_code=exc.status, error=exc)
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            return response

        return web_handler
