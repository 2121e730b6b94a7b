"""Shared fixtures: the two stacks every database- or blob-touching test runs on, and API factories.

`sqlite-fs` is the embedded default (SQLite file + blob folder); `postgres-s3` is the production
shape (a per-run PostgreSQL database on 127.0.0.1:5432 + a SeaweedFS S3 server on loopback). Tests use
unique project and principal names instead of cleaning tables: records are append-only, and the
database refuses DELETE on them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from app.access import service as access_service
from app.core import migrate
from app.core.settings import Settings
from app.main import create_app
from app.state import AppState
from tests.support.seaweed import SeaweedServer, seaweed_s3
from tests.support.services import missing_service

__all__ = ["seaweed_s3"]

PG_ADMIN_URL = os.environ.get("RLHF_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
STACKS = ["sqlite-fs", "postgres-s3"]


def _pg_conninfo(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run, dropped at the end."""
    name = f"rlhf_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        admin = psycopg.connect(_pg_conninfo(PG_ADMIN_URL), autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        missing_service(f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with psycopg.connect(_pg_conninfo(PG_ADMIN_URL), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def make_settings(stack: str, tmp: Path, request: pytest.FixtureRequest) -> Settings:
    # the lease reaper and the run outbox would add their queries to query-counting tests; the runs tests
    # call them directly
    values: dict[str, Any] = {
        "data_dir": tmp,
        "log_level": "WARNING",
        "reaper_interval_seconds": 3600.0,
        "dispatch_interval_seconds": 3600.0,
        # tests integrate audit events themselves (reads of the log do too): no background statements
        # in their query counts
        "audit_merge_delay_seconds": 3600.0,
    }
    if stack == "postgres-s3":
        values["database_url"] = request.getfixturevalue("pg_database")
        s3: SeaweedServer = request.getfixturevalue("seaweed_s3")
        values["blob_url"] = f"s3://{s3.bucket}/{tmp.name}"
        values["s3_endpoint_url"] = s3.endpoint_url
        values["s3_access_key_id"] = SecretStr(s3.access_key)
        values["s3_secret_access_key"] = SecretStr(s3.secret_key)
    return Settings(**values)


class RecordingDispatcher:
    """Stands in for the Celery dispatcher where a test checks what was sent, not what a worker does."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, run_id: str) -> None:
        self.sent.append(run_id)


@pytest.fixture(scope="session", params=STACKS)
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppState]:
    """A migrated database and a blob store; one per stack for the whole run."""
    settings = make_settings(request.param, tmp_path_factory.mktemp(request.param), request)
    migrate.upgrade(settings.database_url)
    state = AppState.build(settings)
    state.dispatcher = RecordingDispatcher()
    yield state
    state.sessions.engine.dispose()


@pytest.fixture(scope="session")
def sqlite_stack(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[AppState]:
    settings = make_settings("sqlite-fs", tmp_path_factory.mktemp("sqlite-only"), request)
    migrate.upgrade(settings.database_url)
    state = AppState.build(settings)
    yield state
    state.sessions.engine.dispose()


@pytest.fixture(scope="session")
def postgres_stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppState]:
    settings = make_settings("postgres-s3", tmp_path_factory.mktemp("pg-only"), request)
    migrate.upgrade(settings.database_url)
    state = AppState.build(settings)
    yield state
    state.sessions.engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database URL with nothing in it, on each engine; for tests that must not share state."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'empty.db'}"
    name = f"rlhf_fresh_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(_pg_conninfo(PG_ADMIN_URL), autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        missing_service(f"PostgreSQL is not reachable: {exc}")

    def drop() -> None:
        with psycopg.connect(_pg_conninfo(PG_ADMIN_URL), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    request.addfinalizer(drop)
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


@pytest.fixture
def fresh_stack(empty_database: str, tmp_path: Path) -> Iterator[AppState]:
    """A migrated database of its own (blobs on the filesystem), for tests that tamper with it."""
    migrate.upgrade(empty_database)
    state = AppState.build(Settings(data_dir=tmp_path, database_url=empty_database, log_level="WARNING"))
    yield state
    state.sessions.engine.dispose()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass
class Api:
    """A TestClient bound to one principal's token."""

    client: TestClient
    token: str
    principal: str
    headers: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.headers = {"Authorization": f"Bearer {self.token}"}

    def get(self, path: str, **kw: Any) -> Any:
        return self.client.get(path, headers={**self.headers, **kw.pop("headers", {})}, **kw)

    def post(self, path: str, **kw: Any) -> Any:
        return self.client.post(path, headers={**self.headers, **kw.pop("headers", {})}, **kw)

    def put(self, path: str, **kw: Any) -> Any:
        return self.client.put(path, headers={**self.headers, **kw.pop("headers", {})}, **kw)

    def request(self, method: str, path: str, **kw: Any) -> Any:
        return self.client.request(method, path, headers={**self.headers, **kw.pop("headers", {})}, **kw)


class World:
    """Factories over one running app: principals with tokens, projects, memberships."""

    def __init__(self, state: AppState, client: TestClient) -> None:
        self.state = state
        self.client = client
        self.admin = self.principal(unique("root"), global_admin=True)

    def principal(self, name: str | None = None, *, global_admin: bool = False) -> Api:
        name = name or unique("user")
        uow = self.state.unit_of_work(request_id="test")
        try:
            who = access_service.get_or_create_principal(uow, name, actor="test", global_admin=global_admin)
            token = access_service.create_token(uow, who, actor="test")
            uow.commit()
        finally:
            uow.close()
        return Api(self.client, token, name)

    def project(self, **members: str) -> str:
        """A new project; `members` maps principal name -> role."""
        name = unique("proj")
        response = self.admin.post("/v1/projects", json={"name": name, "description": "test"})
        assert response.status_code == 201, response.text
        for principal, role in members.items():
            response = self.admin.put(f"/v1/projects/{name}/members/{principal}", json={"role": role})
            assert response.status_code == 200, response.text
        return name

    def member(self, project: str, role: str) -> Api:
        api = self.principal()
        response = self.admin.put(f"/v1/projects/{project}/members/{api.principal}", json={"role": role})
        assert response.status_code == 200, response.text
        return api


@pytest.fixture(scope="session")
def _clients(stack: AppState) -> Iterator[TestClient]:
    with TestClient(create_app(stack.settings, state=stack), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def world(stack: AppState, _clients: TestClient) -> World:
    return World(stack, _clients)
