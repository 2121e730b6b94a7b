"""Group commit: quick registrations on the event loop's thread share one SQLite write transaction.

A policy's registration costs SQLite a commit (the WAL frames of about a dozen pages: the record's
table and index pages, the series row, the audit event and head), a `BEGIN IMMEDIATE` and a pooled
connection; together a quarter of the registration (bench/api.py, py-spy). Under load several
registrations are ready to run in the same turn of the event loop, and they touch the same pages.
Here the first one opens a write transaction and schedules its commit for the end of the turn
(`loop.call_soon`); it and every unit that runs before that commit works in a savepoint of its own,
so a unit that fails (a 409, a 422) rolls back only its own writes. The commit runs once; no unit
answers before it has (each awaits it), so a 201 still means stored. If the commit fails, every
unit of the group gets the error and nothing of the group is stored.

Units run one after another on the loop's thread (they never await while the transaction is open),
so the transaction is never used by two at once; the write lock it holds is released when the turn
ends, as each unit's own transaction released it before. One `GroupCommit` per event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Connection

from app.core.db import discard_after_failed_commit

log = logging.getLogger("rlhf_registry.db")
T = TypeVar("T")
Callback = Callable[[], None]


class GroupCommit:
    def __init__(self, connect: Callable[[], Connection]) -> None:
        self._connect = connect  # a write connection whose `begin` never waits (raises WriterBusy)
        self._conn: Connection | None = None
        self._waiting: list[tuple[asyncio.Future[None], list[Callback]]] = []

    async def run(self, unit: Callable[[Connection], tuple[T, list[Callback]]]) -> T:
        """Run `unit` (which works in a savepoint of `conn` and returns its result and the callbacks
        to run after the commit) in the open group, opening one if none is; return once committed.

        Raises WriterBusy, having run nothing, when a new group cannot take the write lock at once."""
        conn = self._conn if self._conn is not None else self._open()
        result, callbacks = unit(conn)
        committed = asyncio.get_running_loop().create_future()
        self._waiting.append((committed, callbacks))
        await committed
        return result

    def _open(self) -> Connection:
        conn = self._connect()
        try:
            conn.begin()
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        asyncio.get_running_loop().call_soon(self._commit)
        return conn

    def _commit(self) -> None:
        conn, waiting = self._conn, self._waiting
        self._conn, self._waiting = None, []
        assert conn is not None
        try:
            conn.commit()
        except Exception as exc:
            log.exception("group commit of %d registration(s) failed", len(waiting))
            discard_after_failed_commit(conn)
            for committed, _ in waiting:
                if not committed.done():
                    committed.set_exception(exc)
            return
        conn.close()
        for committed, callbacks in waiting:
            try:
                for fn in callbacks:
                    fn()
            except Exception as exc:
                if not committed.done():
                    committed.set_exception(exc)
                continue
            if not committed.done():
                committed.set_result(None)
