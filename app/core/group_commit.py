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
import contextlib
import logging
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Connection

from app.core.db import discard_after_failed_commit, driver_in_transaction

log = logging.getLogger("rlhf_registry.db")
T = TypeVar("T")
Callback = Callable[[], None]


class GroupRolledBack(Exception):
    """A unit ended the shared transaction (a rollback of the whole of it): the group stores nothing."""


class _Group:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.waiting: list[tuple[asyncio.Future[None], list[Callback]]] = []

    def usable(self) -> bool:
        """Whether the group's transaction is still open: a unit whose ORM flush failed may have rolled
        it back, and on SQLite a statement outside a transaction would commit by itself."""
        tx = self.conn.get_transaction()
        return tx is not None and tx.is_active and driver_in_transaction(self.conn)


class GroupCommit:
    def __init__(self, connect: Callable[[], Connection]) -> None:
        self._connect = connect  # a write connection whose `begin` never waits (raises WriterBusy)
        self._open: _Group | None = None

    async def run(self, unit: Callable[[Connection], tuple[T, list[Callback]]]) -> T:
        """Run `unit` (which works in a savepoint of `conn` and returns its result and the callbacks
        to run after the commit) in the open group, opening one if none is; return once committed.

        Raises WriterBusy, having run nothing, when a new group cannot take the write lock at once."""
        group = self._open
        if group is None or not group.usable():
            group = self._begin()  # a group that is no longer usable fails its units when it commits
        result, callbacks = unit(group.conn)
        committed = asyncio.get_running_loop().create_future()
        group.waiting.append((committed, callbacks))
        await committed
        return result

    def _begin(self) -> _Group:
        conn = self._connect()
        try:
            conn.begin()
        except BaseException:
            conn.close()
            raise
        group = self._open = _Group(conn)
        asyncio.get_running_loop().call_soon(self._commit, group)
        return group

    def _commit(self, group: _Group) -> None:
        if self._open is group:
            self._open = None
        error: Exception | None = None
        try:
            if not group.usable():
                raise GroupRolledBack("the group's transaction was rolled back before its commit; nothing was stored")
            group.conn.commit()
        except Exception as exc:
            log.exception("group commit of %d registration(s) failed", len(group.waiting))
            error = exc
            with contextlib.suppress(Exception):
                discard_after_failed_commit(group.conn)
        else:
            try:
                group.conn.close()
            except Exception:
                log.exception("closing the connection of a committed group failed")
        for committed, callbacks in group.waiting:
            outcome = error
            if outcome is None:
                try:
                    for fn in callbacks:
                        fn()
                except Exception as exc:
                    outcome = exc
            if committed.done():
                continue
            if outcome is None:
                committed.set_result(None)
            else:
                committed.set_exception(outcome)
