"""Engine, declarative base and sessions.

SQLite runs in WAL mode with foreign keys on. Its writers begin with `BEGIN IMMEDIATE` so that two
concurrent writers queue on the busy timeout instead of failing when a read lock cannot be upgraded;
readers begin a plain deferred transaction and never block writers.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import UTC, datetime
from typing import Any

from pydantic_core import from_json
from sqlalchemy import JSON, Connection, DateTime, Engine, MetaData, create_engine, event, make_url
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JsonType = JSON().with_variant(JSONB(), "postgresql")


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware timestamps on both databases (SQLite stores naive UTC)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value if value.tzinfo else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def utcnow() -> datetime:
    return datetime.now(UTC)


def json_loads(text: str | bytes) -> Any:
    """The engine's JSON column decoder: pydantic's Rust parser (a list page decodes four JSON columns per
    record, and this is three times faster than `json.loads`), falling back to `json.loads` for the few
    texts it refuses that Python accepts (a lone surrogate escape)."""
    try:
        return from_json(text)
    except ValueError:
        return json.loads(text)


BUSY_TIMEOUT_MS = 30_000
PG_CONNECT_TIMEOUT_S = 5

DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (OperationalError, PoolTimeout)
"""Errors that say the database cannot serve now, nothing about the request: unreachable, restarting,
a session the server ended, every pooled connection busy for the pool's timeout. The API answers them
503 `unavailable` with Retry-After, for the client to retry."""


def discard_after_failed_commit(conn: Connection) -> None:
    """Close `conn` for good after its COMMIT failed. SQLite keeps the transaction open when COMMIT fails
    (a deferred foreign key, say), and SQLAlchemy then returns the connection to the pool without a
    rollback: the next user would find a transaction open and the database's write lock held. Closing
    the driver's connection (`invalidate`) rolls back and releases the lock; the pool opens a new one."""
    conn.invalidate()
    conn.close()


def _begin(conn: Connection, statement: str) -> None:
    """`statement` on the driver's own connection, its errors raised as SQLAlchemy's (a locked database:
    `OperationalError`, one of `DATABASE_UNAVAILABLE`). Through `exec_driver_sql`, a BEGIN would take
    SQLAlchemy's whole statement path (events, a cursor, a result), a tenth of a read's CPU, for a
    statement with no parameters and no result."""
    try:
        conn.connection.driver_connection.execute(statement)  # type: ignore[union-attr]  # a sqlite3 connection
    except sqlite3.Error as exc:
        raise DBAPIError.instance(statement, None, exc, sqlite3.Error) from exc


def make_engine(url: str, *, pool_size: int = 10, pool_timeout: float = 30.0) -> Engine:
    """The engine for `url`; a request that waits `pool_timeout` seconds for a pooled connection fails
    with one of `DATABASE_UNAVAILABLE`."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            json_deserializer=json_loads,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_timeout=pool_timeout,
            # the connection used last comes back first: its page cache is the warmest (a write by
            # another connection invalidates a connection's whole cache)
            pool_use_lifo=True,
        )
        # SQLite has one write lock, and its busy handler retries with growing sleeps, which is unfair
        # under load (some writers win again and again while others sleep). Writers of this process
        # queue on a FIFO-ish Python lock instead, held from BEGIN IMMEDIATE to COMMIT or ROLLBACK;
        # the busy timeout still arbitrates between processes.
        write_lock = threading.Lock()

        @event.listens_for(engine, "connect")
        def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # let the "begin" hook below emit BEGIN itself
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            if not conn.get_execution_options().get("rlhf_write"):
                _begin(conn, "BEGIN")
                return
            if not write_lock.acquire(timeout=60):
                raise TimeoutError("no SQLite write lock within 60 s")
            conn.info["rlhf_write_lock"] = True
            try:
                _begin(conn, "BEGIN IMMEDIATE")
            except BaseException:
                _release(conn)
                raise

        def _release(conn: Any) -> None:
            if conn.info.pop("rlhf_write_lock", False):
                write_lock.release()

        event.listen(engine, "commit", _release)
        event.listen(engine, "rollback", _release)

        return engine
    url = url.replace("postgresql://", "postgresql+psycopg://", 1) if url.startswith("postgresql://") else url
    # JIT compilation costs more than it saves on the registry's short queries (lineage traces included)
    connect_args: dict[str, Any] = {"options": "-c jit=off"}
    if "connect_timeout" not in make_url(url).query:
        # an unreachable server fails a request in seconds (a 503 the client retries) rather than
        # holding it, and a pooled connection, until the operating system gives up on the connect
        connect_args["connect_timeout"] = PG_CONNECT_TIMEOUT_S
    # `pool_pre_ping`: a connection the server closed while it sat in the pool (a restart) is replaced
    # at checkout, so that a replica recovers by itself once the database is back
    return create_engine(
        url,
        json_deserializer=json_loads,
        pool_size=pool_size,
        max_overflow=pool_size * 2,
        pool_pre_ping=True,
        pool_timeout=pool_timeout,
        connect_args=connect_args,
    )


class SessionFactory:
    """Read sessions and write sessions over one engine (one pool)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._read = sessionmaker(bind=engine, expire_on_commit=False)
        self._write = sessionmaker(bind=engine.execution_options(rlhf_write=True), expire_on_commit=False)

    def read(self) -> Session:
        return self._read()

    def write(self) -> Session:
        return self._write()
