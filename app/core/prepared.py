"""Statements run on the driver's connection, below SQLAlchemy's execution layer.

A registration runs about ten short statements and a read of one record two. On SQLite, SQLAlchemy's
execution of an already compiled statement (the execution context, parameter processing, events, the
result's metadata) costs several times what the database does for it: a third of a registration's
time went there (py-spy over bench/api.py's load). A `Prepared` statement is a Core statement compiled
once per dialect; running it hands the SQL and the parameters, converted by the same bind processors
SQLAlchemy would apply, to the DB-API connection under a SQLAlchemy `Connection`, inside whatever
transaction that connection holds, and converts result columns with the same result processors.
`tests/core/test_prepared.py` checks that both paths read and write the same values on both databases.

For statements built once at import with named bind parameters only: no expanding IN, no literal-
execute parameters, no Python-side column defaults (an INSERT is given every column it names). The
transaction stays SQLAlchemy's: begin it (a `Session.connection()` does, or a statement through the
`Connection`) before running a prepared write; a prepared read on a connection outside a transaction
runs as the driver runs it (SQLite: its own implicit read transaction). Listeners of the engine's
`before_cursor_execute` event see each statement (with `context=None`; `after_cursor_execute` is not
fired), so statement counts still cover them. A driver error is raised as SQLAlchemy raises it (an
`IntegrityError`, an `OperationalError`, ...; the connection invalidated on a disconnect), so the
API's error handlers answer it as before.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from sqlalchemy import Connection
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement

Processor = Callable[[Any], Any]
Params = Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class _Plan:
    """A statement compiled for one dialect, with what running it needs."""

    sql: str
    positional: bool
    constants: dict[str, Any]  # values of the binds the statement carries itself (a LIMIT 1, an id = 1)
    binds: tuple[tuple[str, Processor | None], ...]  # bind names, in the SQL's order when positional
    results: tuple[Processor | None, ...] | None  # None: no column needs converting

    def parameters(self, params: Params) -> Sequence[Any] | dict[str, Any]:
        merged = {**self.constants, **params} if self.constants else params
        if self.positional:
            return tuple(merged[name] if proc is None else proc(merged[name]) for name, proc in self.binds)
        return {name: merged[name] if proc is None else proc(merged[name]) for name, proc in self.binds}

    def convert(self, row: Sequence[Any]) -> tuple[Any, ...]:
        if self.results is None:
            return tuple(row)
        return tuple(
            value if proc is None or value is None else proc(value)
            for proc, value in zip(self.results, row, strict=True)
        )


def _compile(statement: ClauseElement, dialect: Dialect) -> _Plan:
    compiled: Any = statement.compile(dialect=dialect)
    if compiled.literal_execute_params or compiled.post_compile_params or compiled.escaped_bind_names:
        raise ValueError(f"not a statement to prepare (expanding or escaped binds): {compiled.string}")
    names = tuple(compiled.positiontup) if compiled.positional else tuple(compiled.bind_names.values())
    constants: dict[str, Any] = {}
    for bind, name in compiled.bind_names.items():
        if bind.callable is not None:
            raise ValueError(f"bind {name} has a callable value; not a statement to prepare")
        if not bind.required:
            constants[name] = bind.value
    processors = compiled._bind_processors
    for proc in processors.values():
        if not callable(proc):
            raise ValueError("tuple-typed binds are not supported")
    columns = compiled._result_columns or []
    results = tuple(entry[3]._cached_result_processor(dialect, None) for entry in columns)
    return _Plan(
        sql=compiled.string,
        positional=bool(compiled.positional),
        constants=constants,
        binds=tuple((name, processors.get(name)) for name in names),
        results=results if any(proc is not None for proc in results) else None,
    )


def _reraise(conn: Connection, exc: BaseException, sql: str, params: Any, cursor: Any) -> NoReturn:
    """Raise a driver's error as SQLAlchemy's execution would have (its `DBAPIError` subclass), and
    invalidate the connection when the error says it is gone; anything else as it is."""
    dialect = conn.dialect
    if not isinstance(exc, dialect.loaded_dbapi.Error):
        raise exc
    gone = bool(dialect.is_disconnect(exc, conn.connection.dbapi_connection, cursor))
    if gone:
        conn.invalidate(exc)
    raise DBAPIError.instance(
        sql, params, exc, dialect.loaded_dbapi.Error, connection_invalidated=gone, dialect=dialect
    ) from exc


def _driver(conn: Connection) -> Any:
    """The DB-API connection under `conn` (sqlite3's or psycopg's)."""
    return conn.connection.driver_connection


def _cursor(conn: Connection, sql: str, params: Any) -> Any:
    """A cursor of the driver's connection. The driver refuses one on a connection the server has closed
    (psycopg: an `OperationalError`): raised as SQLAlchemy's error, as a statement's would be, so that
    the API answers 503 and the pool replaces the connection."""
    try:
        return _driver(conn).cursor()
    except BaseException as exc:
        _reraise(conn, exc, sql, params, None)


class Prepared:
    """One Core statement (or one per dialect name, for dialect-specific SQL such as an upsert)."""

    __slots__ = ("_plans", "_statements")

    def __init__(self, statement: ClauseElement | Mapping[str, ClauseElement]) -> None:
        self._statements = statement
        self._plans: weakref.WeakKeyDictionary[Dialect, _Plan] = weakref.WeakKeyDictionary()

    def plan(self, dialect: Dialect) -> _Plan:
        plan = self._plans.get(dialect)
        if plan is None:
            statements = self._statements
            statement = statements[dialect.name] if isinstance(statements, Mapping) else statements
            plan = self._plans[dialect] = _compile(statement, dialect)
        return plan

    def _run(self, conn: Connection, params: Params) -> tuple[_Plan, Any]:
        plan = self.plan(conn.dialect)
        parameters = plan.parameters(params)
        cursor = _cursor(conn, plan.sql, parameters)
        if conn._has_events or conn.engine._has_events:
            conn.dispatch.before_cursor_execute(conn, cursor, plan.sql, parameters, None, False)
        try:
            cursor.execute(plan.sql, parameters)
        except BaseException as exc:
            cursor.close()
            _reraise(conn, exc, plan.sql, parameters, cursor)
        return plan, cursor

    def execute(self, conn: Connection, params: Params | Sequence[Params] = {}) -> None:  # noqa: B006 (read only)
        """Run a write with one set of parameters, or with each of a list of them."""
        if isinstance(params, Mapping):
            self._run(conn, params)[1].close()
            return
        plan = self.plan(conn.dialect)
        many = [plan.parameters(p) for p in params]
        cursor = _cursor(conn, plan.sql, many)
        try:
            if conn._has_events or conn.engine._has_events:
                conn.dispatch.before_cursor_execute(conn, cursor, plan.sql, many, None, True)
            cursor.executemany(plan.sql, many)
        except BaseException as exc:
            _reraise(conn, exc, plan.sql, many, cursor)
        finally:
            cursor.close()

    def first(self, conn: Connection, params: Params = {}) -> tuple[Any, ...] | None:  # noqa: B006
        plan, cursor = self._run(conn, params)
        try:
            row = cursor.fetchone()
        finally:
            cursor.close()
        return None if row is None else plan.convert(row)

    def all(self, conn: Connection, params: Params = {}) -> list[tuple[Any, ...]]:  # noqa: B006
        plan, cursor = self._run(conn, params)
        try:
            rows = cursor.fetchall()
        finally:
            cursor.close()
        convert = plan.convert
        return [convert(row) for row in rows]

    def scalar(self, conn: Connection, params: Params = {}) -> Any:  # noqa: B006
        row = self.first(conn, params)
        return None if row is None else row[0]
