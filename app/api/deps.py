"""Typed FastAPI dependencies: the unit of work, the authenticated principal, project access."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, Request

from app.access import service as access_service
from app.access.models import Principal
from app.core.uow import UnitOfWork
from app.state import AppState

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.registry
    return state


StateDep = Annotated[AppState, Depends(get_state)]


def get_uow(request: Request, state: StateDep) -> Iterator[UnitOfWork]:
    """One request, one transaction: committed when the handler returns, before the response is sent."""
    uow = state.unit_of_work(request_id=request.state.request_id, write=request.method not in READ_METHODS)
    try:
        yield uow
        uow.commit()
    except BaseException:
        uow.rollback()
        raise
    finally:
        uow.close()


UowDep = Annotated[UnitOfWork, Depends(get_uow, scope="function")]


def get_principal(uow: UowDep, authorization: Annotated[str | None, Header()] = None) -> Principal:
    return access_service.authenticate(uow.session, authorization)


PrincipalDep = Annotated[Principal, Depends(get_principal)]
