"""Typed FastAPI dependencies: the unit of work, the authenticated principal, project access."""

from __future__ import annotations

import email.message
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated

import anyio
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
    as JSON. Called by the unit of work as it opens, so no route stores anything from an unchecked body."""
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


async def get_uow(request: Request) -> AsyncIterator[UnitOfWork]:
    """One request, one unit of work: one session on one pooled connection, one transaction, committed
    (after the audit append) when the handler returns, before the response is sent; rolled back on
    any error. Reads (GET, HEAD) run in a read transaction; every other method in a write transaction
    (on SQLite, `BEGIN IMMEDIATE`).

    No database call runs on the event loop's thread. The session is made here, on the loop, but it
    connects and begins only when first used, in the thread pool: by the authentication
    (`get_principal`) or by a sync handler, which FastAPI runs there; the commit (or rollback) and the
    close run there too, in one hop (`_finish`). A hop to the thread pool costs more CPU than a read's
    queries, so the unit takes no hop of its own to open. The body check and the state are called here
    rather than declared as dependencies: each dependency FastAPI resolves costs tens of microseconds."""
    await check_json_body(request)
    state: AppState = request.app.state.registry
    uow = state.unit_of_work(request_id=request.state.request_id, write=request.method not in READ_METHODS)
    async with _finishing(uow):
        yield uow


async def get_read_uow(request: Request) -> AsyncIterator[UnitOfWork]:
    """The same unit in a read transaction whatever the method: for a route that writes nothing to the
    database (a part of a multipart upload streams to the blob store only), so that on SQLite it does
    not hold the database's one write lock while bytes arrive."""
    state: AppState = request.app.state.registry
    uow = state.unit_of_work(request_id=request.state.request_id, write=False)
    async with _finishing(uow):
        yield uow


@asynccontextmanager
async def _finishing(uow: UnitOfWork) -> AsyncIterator[None]:
    try:
        yield
    except BaseException:
        await _in_thread(_finish, uow, False)
        raise
    await _in_thread(_finish, uow, True)


def _finish(uow: UnitOfWork, commit: bool) -> None:
    """Commit (or roll back) and close, in the thread pool; a failed commit rolls back."""
    try:
        if commit:
            uow.commit()
        else:
            uow.rollback()
    except BaseException:
        if commit:
            uow.rollback()
        raise
    finally:
        uow.close()


async def _in_thread(fn: Callable[[UnitOfWork, bool], None], uow: UnitOfWork, commit: bool) -> None:
    """Run the end of a unit in the thread pool, shielded from cancellation (a client that hangs up must
    not leave a connection checked out) and outside the pool's capacity limit: the unit holds a pooled
    connection, on SQLite perhaps the write lock, that requests waiting for a thread may be waiting for."""
    with anyio.CancelScope(shield=True):
        await anyio.to_thread.run_sync(fn, uow, commit, limiter=anyio.CapacityLimiter(1))


UowDep = Annotated[UnitOfWork, Depends(get_uow, scope="function")]
ReadUowDep = Annotated[UnitOfWork, Depends(get_read_uow, scope="function")]


async def get_principal(request: Request, uow: UowDep, authorization: Annotated[str | None, Header()] = None) -> Actor:
    """The request's principal, authenticated on the unit's own connection and transaction: in the
    thread pool (a database call), then named on the request here, on the event loop (`note_token`)."""
    return await _authenticate(request, uow, authorization)


async def get_read_principal(
    request: Request, uow: ReadUowDep, authorization: Annotated[str | None, Header()] = None
) -> Actor:
    return await _authenticate(request, uow, authorization)


async def _authenticate(request: Request, uow: UnitOfWork, authorization: str | None) -> Actor:
    # `uow.connection` connects (and begins) the unit: read in the thread, as every database call
    actor = await run_in_threadpool(lambda: access_service.authenticate(uow.connection, authorization))
    uow.token_id = actor.token_id
    note_token(request, actor)
    return actor


PrincipalDep = Annotated[Actor, Depends(get_principal)]
ReadPrincipalDep = Annotated[Actor, Depends(get_read_principal)]


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
