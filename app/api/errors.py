"""One place renders every error as problem+json (RFC 9457) with a stable `code`."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.core.db import DATABASE_UNAVAILABLE
from app.core.errors import (
    AppError,
    MethodNotAllowed,
    NotFound,
    Unavailable,
    ValidationFailed,
    VersionConflict,
)

log = logging.getLogger("rlhf_registry.errors")
PROBLEM = "application/problem+json"


def problem_response(error: AppError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else {}
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    return JSONResponse(error.to_problem(), status_code=error.status, media_type=PROBLEM, headers=headers)


async def _app_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    return problem_response(exc)


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [{"loc": list(err.get("loc", ())), "msg": str(err.get("msg", ""))} for err in exc.errors()]
    return problem_response(ValidationFailed(f"the request is not valid: {len(errors)} problem(s)", errors=errors))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        return problem_response(NotFound(f"no route {request.url.path}"))
    if exc.status_code == 405:
        return problem_response(MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}"))
    error: AppError = ValidationFailed(str(exc.detail)) if exc.status_code < 500 else AppError(str(exc.detail))
    error.status = exc.status_code
    return problem_response(error)


async def _integrity_error(_: Request, exc: Exception) -> JSONResponse:
    log.warning("integrity error: %s", exc.__class__.__name__)
    return problem_response(VersionConflict("a concurrent write stored conflicting content first; retry the request"))


async def _operational_error(_: Request, exc: Exception) -> JSONResponse:
    # one line per refused request: an outage refuses every request, and a traceback each would bury the
    # log; the driver's message says what failed (connection refused, timeout, server closed)
    log.warning("database unavailable: %s: %s", type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "")
    return problem_response(Unavailable("the database is unavailable; retry later"))


def install(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(IntegrityError, _integrity_error)
    for unavailable in DATABASE_UNAVAILABLE:
        app.add_exception_handler(unavailable, _operational_error)
