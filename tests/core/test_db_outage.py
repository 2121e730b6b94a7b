"""What a database that went away leaves behind is raised as SQLAlchemy raises it (so the API answers 503
`unavailable`), and the pool replaces the dead connection by itself."""

from __future__ import annotations

import dataclasses
import socket
import threading

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from app.core.db import PG_CONNECT_TIMEOUT_S, SessionFactory, make_engine
from app.main import create_app
from app.state import AppState

SELECT_ONE = text("SELECT 1")


def test_statement_on_a_closed_driver_connection_invalidates_it(stack: AppState) -> None:
    with stack.sessions.engine.connect() as conn:
        driver = conn.connection.driver_connection
        assert driver is not None
        driver.close()  # as a server that ended the session leaves it
        with pytest.raises(DBAPIError) as caught:
            conn.execute(SELECT_ONE).scalar()
        assert caught.value.connection_invalidated and conn.invalidated
    with stack.sessions.engine.connect() as conn:
        assert conn.execute(SELECT_ONE).scalar() == 1


def test_postgres_connect_to_a_server_that_never_answers_gives_up() -> None:
    """A listening socket that never speaks: without a connect timeout the connect would wait forever,
    holding the request and its pooled connection."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        engine = make_engine(f"postgresql://postgres@127.0.0.1:{silent.getsockname()[1]}/registry")
        outcome: list[BaseException] = []

        def connect() -> None:
            try:
                engine.connect().close()
            except BaseException as exc:
                outcome.append(exc)

        attempt = threading.Thread(target=connect, daemon=True)
        attempt.start()
        attempt.join(timeout=PG_CONNECT_TIMEOUT_S * 6)
        engine.dispose()
    assert not attempt.is_alive(), "the connect did not give up"
    assert len(outcome) == 1 and isinstance(outcome[0], OperationalError), outcome


def test_every_pooled_connection_busy_answers_503(stack: AppState) -> None:
    engine = make_engine(stack.settings.database_url, pool_size=1, pool_timeout=0.1)
    app = create_app(stack.settings, state=dataclasses.replace(stack, sessions=SessionFactory(engine)))
    held: list[Connection] = []
    try:
        with pytest.raises(PoolTimeout):  # take every connection the pool will give
            for _ in range(10):
                held.append(engine.connect())
        with TestClient(app, raise_server_exceptions=False) as client:
            response = client.get("/v1/records/00000000-0000-0000-0000-000000000000")
        assert response.status_code == 503 and response.json()["code"] == "unavailable"
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.headers["retry-after"]
    finally:
        for conn in held:
            conn.close()
        engine.dispose()
