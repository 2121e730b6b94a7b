"""Typed FastAPI dependencies: the unit of work, the authenticated principal, project access."""

from __future__ import annotations

import email.message
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar

import anyio.to_thread
from fastapi import Depends, Header, Request
from fastapi.routing import APIRoute
from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool

from app.access import service as access_service
from app.access.service import Actor
from app.core.db import WriterBusy
from app.core.errors import ValidationFailed
from app.core.json_limits import loads_body
from app.core.logging import token_id_var
from app.core.uow import UnitOfWork
from app.state import AppState

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
T = TypeVar("T")


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


JSONBodyChecked = Annotated[None, Depends(check_json_body)]


async def get_uow(request: Request, state: StateDep, json_body: JSONBodyChecked) -> AsyncIterator[UnitOfWork]:
    """One request, one transaction: committed when the handler returns, before the response is sent.

    The dependency itself runs on the event loop (thread hops cost more than the work of a read). A
    read-only transaction ends inline. A write transaction ends in the thread pool on PostgreSQL, where
    the commit (and the audit append before it) may wait on row locks; on SQLite it ends inline, since
    the writer holding the transaction already holds the database's only write lock."""
    write = request.method not in READ_METHODS
    uow = state.unit_of_work(request_id=request.state.request_id, write=write)
    inline = not write or state.settings.is_sqlite
    try:
        yield uow
        if inline:
            uow.commit()
        else:
            await run_in_threadpool(uow.commit)
    except BaseException:
        if inline:
            uow.rollback()
        else:
            await run_in_threadpool(uow.rollback)
        raise
    finally:
        uow.close()


UowDep = Annotated[UnitOfWork, Depends(get_uow, scope="function")]


async def get_principal(
    request: Request, uow: UowDep, state: StateDep, authorization: Annotated[str | None, Header()] = None
) -> Actor:
    """Authenticate on the event loop. A write request authenticates on a short read session of its own,
    so that its write transaction (which may queue for a lock) begins in the thread pool, not here."""
    if request.method in READ_METHODS:
        actor = access_service.authenticate(uow.session, authorization)
    else:
        with state.sessions.read() as session:
            actor = access_service.authenticate(session, authorization)
    uow.token_id = actor.token_id
    note_token(request, actor)
    return actor


PrincipalDep = Annotated[Actor, Depends(get_principal)]


def note_token(request: Request, actor: Actor) -> None:
    """Name the request's token, by id (never its secret), on `request.state.token_id` and in the
    request's log lines, its access log line included. Called on the event loop: a context variable set
    in a worker thread would not reach the access log."""
    request.state.token_id = actor.token_id
    token_id_var.set(actor.token_id)


AuthorizationHeader = Annotated[str | None, Header()]


@contextmanager
def reading(request: Request, authorization: str | None) -> Iterator[tuple[Connection, Actor]]:
    """The hot read routes' unit of work: one connection, the principal authenticated on it, then what
    it reads. On SQLite each of the (two) statements is its own implicit read transaction: no BEGIN and
    ROLLBACK around them, which cost a tenth of a read; the token is checked before the record is read.

    A context manager inside the handler rather than a chain of dependencies: on a read of one record,
    resolving three dependencies and opening an ORM session cost more than the two queries
    (bench/api.py). The route declares `authorization: AuthorizationHeader` so the header is documented."""
    state: AppState = request.app.state.registry
    with state.sessions.autocommit_reads.connect() as conn:
        actor = access_service.authenticate(conn, authorization)
        note_token(request, actor)
        yield conn, actor


# A body up to this size parses and digests in well under a millisecond (a criteria document with its
# gold examples included), so a quick kind's registration may run on the event loop.
ON_LOOP_BODY_MAX = 64 * 1024


async def writing(
    request: Request,
    authorization: str | None,
    work: Callable[[UnitOfWork, Actor, dict[str, Any]], T],
    *,
    quick: bool = False,
) -> T:
    """A registration, whole in one call: authenticate, parse the body, begin, `work`, audit and commit
    (or roll back), on one connection.

    `get_uow` commits after the handler has returned to the loop, so a write transaction stays open (and
    on SQLite holds the database's one write lock) across two thread hops and whatever else the loop
    runs meanwhile; that wait, not the work, bounded registrations per second (bench/api.py). FastAPI's
    dependencies and body parsing cost more than a policy's whole pipeline, so the route takes the raw
    body and this does both: the principal first (401 before any problem with the body), then the body
    (`json_object_body`, FastAPI's rules and errors).

    On SQLite a `quick` unit (a kind that reads no blob, a small body) runs on the event loop's own
    thread, in a savepoint of the transaction it shares with the other quick units of the same turn of
    the loop, committed once for all of them (`app.core.group_commit`): no thread hop, no GIL handed
    back and forth on every SQLite call, one commit for many registrations. It never waits for the
    write lock there (a thread holding it may be waiting for the loop): when the lock is taken, by this
    process or another, the unit runs in the thread pool instead. Other units run in the thread pool,
    one at a time on SQLite, each in a transaction of its own.
    """
    state: AppState = request.app.state.registry
    request_id: str = request.state.request_id
    raw = await request.body()
    content_type = request.headers.get("content-type")

    authenticated: list[Actor] = []

    def unit_on(conn: Connection, *, savepoint: bool) -> tuple[T, list[Callable[[], None]]]:
        actor = access_service.authenticate(conn, authorization)
        authenticated.append(actor)
        body = json_object_body(raw, content_type)
        uow = UnitOfWork.on_connection(conn, request_id=request_id, audit_sink=state.audit, savepoint=savepoint)
        uow.token_id = actor.token_id
        try:
            result = work(uow, actor, body)
            uow.commit()
            return result, uow.after_outer_commit
        except BaseException:
            uow.rollback()
            raise
        finally:
            uow.close()

    def unit() -> T:
        with state.sessions.write_connection() as conn:
            return unit_on(conn, savepoint=False)[0]

    try:
        if quick and state.settings.is_sqlite and len(raw) <= ON_LOOP_BODY_MAX:
            try:
                return await state.group_commit.run(lambda conn: unit_on(conn, savepoint=True))
            except WriterBusy:
                pass  # nothing was written; wait for the lock in a thread
        return await anyio.to_thread.run_sync(unit, limiter=state.write_limiter)
    finally:
        if authenticated:  # the unit may have run in a thread, or on the loop for another request's turn
            note_token(request, authenticated[-1])


def json_object_body(raw: bytes, content_type: str | None) -> dict[str, Any]:
    """The request body as a JSON object, by FastAPI's rules for a `dict` body (JSON only under an
    application/json or application/*+json content type: FastAPI's strict content type) and with the
    answers it gives (`tests/api/test_register_bodies.py` compares them), held to the registry's JSON
    as every other route's body is (`check_json_body`)."""
    value: Any = raw
    if raw and _is_json(content_type):
        value = loads_body(raw)  # FastAPI's answers to what is not JSON; the registry's limits beyond
    if not raw:
        raise _invalid_body(["body"], "Field required")
    if not isinstance(value, dict):
        raise _invalid_body(["body"], "Input should be a valid dictionary")
    return value


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    message = email.message.Message()
    message["content-type"] = content_type
    if message.get_content_maintype() != "application":
        return False
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


def _invalid_body(loc: list[Any], msg: str) -> ValidationFailed:
    return ValidationFailed("the request is not valid: 1 problem(s)", errors=[{"loc": loc, "msg": msg}])
