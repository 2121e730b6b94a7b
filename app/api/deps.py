"""Typed FastAPI dependencies: the unit of work, the authenticated principal, project access."""

from __future__ import annotations

import email.message
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from app.access import service as access_service
from app.access.service import Actor
from app.core.json_limits import loads_body
from app.core.logging import token_id_var
from app.core.uow import UnitOfWork
from app.state import AppState

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


async def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.registry
    return state


StateDep = Annotated[AppState, Depends(get_state)]


async def check_json_body(request: Request) -> None:
    """Hold a route's JSON body to the registry's JSON (`app.core.json_limits`) before anything reads it.

    FastAPI has parsed the body already, with Python's `json`, which reads `NaN`, integers beyond 2**53
    and lone surrogates; its parse is not replaceable, so the body is parsed again here, for routes
    that take a body at all (a raw upload streams its own) and under the content types FastAPI reads
    as JSON. A dependency of the unit of work, so no route stores anything from an unchecked body."""
    if request.method in READ_METHODS:
        return
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or route.body_field is None:
        return
    if not _is_json(request.headers.get("content-type")):
        return
    raw = await request.body()
    if len(raw) > ON_LOOP_BODY_MAX:
        await run_in_threadpool(loads_body, raw)
    elif raw:
        loads_body(raw)


# A body up to this size parses in well under a millisecond (a criteria document with its gold
# examples included): checked on the event loop rather than paying a thread hop.
ON_LOOP_BODY_MAX = 64 * 1024


JSONBodyChecked = Annotated[None, Depends(check_json_body)]


def get_uow(request: Request, state: StateDep, json_body: JSONBodyChecked) -> Iterator[UnitOfWork]:
    """One request, one unit of work: one session on one pooled connection, one transaction, committed
    (after the audit append) when the handler returns, before the response is sent; rolled back on
    any error. A sync dependency: FastAPI runs its setup and its teardown in the thread pool, as it runs
    the `def` handlers and `get_principal`, so no database call of any route runs on the event loop's
    thread, whatever the database does meanwhile (a lock, a slow query). Reads (GET, HEAD) run in a read
    transaction; every other method in a write transaction (on SQLite, `BEGIN IMMEDIATE`)."""
    uow = state.unit_of_work(request_id=request.state.request_id, write=request.method not in READ_METHODS)
    yield from _run(uow)


def get_read_uow(request: Request, state: StateDep) -> Iterator[UnitOfWork]:
    """The same unit in a read transaction whatever the method: for a route that writes nothing to the
    database (a part of a multipart upload streams to the blob store only), so that on SQLite it does
    not hold the database's one write lock while bytes arrive."""
    yield from _run(state.unit_of_work(request_id=request.state.request_id, write=False))


def _run(uow: UnitOfWork) -> Iterator[UnitOfWork]:
    try:
        yield uow
        uow.commit()
    except BaseException:
        uow.rollback()
        raise
    finally:
        uow.close()


UowDep = Annotated[UnitOfWork, Depends(get_uow, scope="function")]
ReadUowDep = Annotated[UnitOfWork, Depends(get_read_uow, scope="function")]


def get_principal(uow: UowDep, authorization: Annotated[str | None, Header()] = None) -> Actor:
    """Authenticate on the unit's own connection and transaction (in the thread pool)."""
    actor = access_service.authenticate(uow.connection, authorization)
    uow.token_id = actor.token_id
    return actor


def get_read_principal(uow: ReadUowDep, authorization: Annotated[str | None, Header()] = None) -> Actor:
    actor = access_service.authenticate(uow.connection, authorization)
    uow.token_id = actor.token_id
    return actor


async def noted_principal(request: Request, actor: Annotated[Actor, Depends(get_principal)]) -> Actor:
    note_token(request, actor)
    return actor


async def noted_read_principal(request: Request, actor: Annotated[Actor, Depends(get_read_principal)]) -> Actor:
    note_token(request, actor)
    return actor


PrincipalDep = Annotated[Actor, Depends(noted_principal)]
ReadPrincipalDep = Annotated[Actor, Depends(noted_read_principal)]


def note_token(request: Request, actor: Actor) -> None:
    """Name the request's token, by id (never its secret), on `request.state.token_id` and in the
    request's log lines, its access log line included. Run on the event loop (an async dependency that
    calls no database): a context variable set in a worker thread would not reach the access log."""
    request.state.token_id = actor.token_id
    token_id_var.set(actor.token_id)


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    message = email.message.Message()
    message["content-type"] = content_type
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")
