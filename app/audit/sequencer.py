"""The sequencer: gives committed audit events their tree index and integrates them into the RFC 9162
tree, as Trillian's log signer does.

Writers insert events with their leaf hash and no index (`app.audit.service.AuditLog.append`), so they
never wait on each other. One sequencer at a time (per batch: PostgreSQL's transaction-level advisory
lock, SQLite's write lock) reads the events not yet integrated, assigns them the next indexes in the
order of their `seq`, extends the running chain hash over them and counts them in `audit_head`, all in
one transaction; checkpoints and proofs (`app.audit.tree`) cover exactly the events counted there.

Why this order is consistent with commit order: the batch is read by one statement, so with one
snapshot (PostgreSQL read committed; SQLite's write lock excludes any writer). An event committed before
that snapshot is in the batch or an earlier one; an event committed after it goes into a later batch,
and so gets a higher index. Two events of one batch are ordered by `seq`, which a writer draws when it
inserts: if one event's transaction committed before the other's began, it drew the smaller `seq`. An
event with a smaller `seq` that commits late is not lost either: the sequencer selects events by "no
index yet" (a partial index), not by a `seq` cursor, so it is integrated by the next batch after its
commit, with a higher index than the events already integrated.
"""

from __future__ import annotations

import hashlib
import logging
import threading

from sqlalchemy import Connection, bindparam, func, insert, select, update

from app.audit.chain import GENESIS, next_chain_hash
from app.audit.models import AuditEvent, AuditHead
from app.audit.service import HEAD_ID
from app.core.db import SessionFactory

log = logging.getLogger("rlhf_registry.audit.sequencer")
ADVISORY_KEY = int.from_bytes(hashlib.sha256(b"rlhf-registry audit sequencer").digest()[:8], "big", signed=True)
BATCH = 5000  # events integrated per transaction

_PENDING = select(AuditEvent.seq, AuditEvent.leaf_hash).where(AuditEvent.index.is_(None)).order_by(AuditEvent.seq)
_SET_INDEX = (
    update(AuditEvent)
    .where(AuditEvent.seq == bindparam("b_seq"))
    .values(index=bindparam("b_index"), chain_hash=bindparam("b_chain"))
)
_HEAD = select(AuditHead.size, AuditHead.chain_hash).where(AuditHead.id == HEAD_ID).with_for_update()


def _elected(conn: Connection, *, wait: bool) -> bool:
    """Take the sequencer's lock for this transaction. PostgreSQL: the advisory lock, released at commit
    or rollback (`wait`: queue for it; otherwise give up when another sequencer holds it). SQLite: the
    connection's transaction already holds the database's write lock."""
    if conn.dialect.name != "postgresql":
        return True
    if wait:
        conn.execute(select(func.pg_advisory_xact_lock(ADVISORY_KEY)))
        return True
    return bool(conn.execute(select(func.pg_try_advisory_xact_lock(ADVISORY_KEY))).scalar_one())


def integrate_batch(conn: Connection, *, batch: int = BATCH, wait: bool = False) -> int | None:
    """Integrate up to `batch` committed events in the transaction `conn` is in (the caller commits).

    Returns how many were integrated, or None when another sequencer holds the lock (`wait` False)."""
    if not _elected(conn, wait=wait):
        return None
    head = conn.execute(_HEAD).first()
    size, chain = (0, GENESIS) if head is None else (int(head[0]), str(head[1]))
    pending = conn.execute(_PENDING.limit(batch)).all()
    if not pending:
        return 0
    rows = []
    for seq, leaf in pending:
        chain = next_chain_hash(chain, leaf)
        rows.append({"b_seq": seq, "b_index": size, "b_chain": chain})
        size += 1
    conn.execute(_SET_INDEX, rows)
    if head is None:
        conn.execute(insert(AuditHead).values(id=HEAD_ID, size=size, chain_hash=chain))
    else:
        conn.execute(update(AuditHead).where(AuditHead.id == HEAD_ID).values(size=size, chain_hash=chain))
    return len(rows)


def integrate_pending(sessions: SessionFactory, *, batch: int = BATCH, wait: bool = False) -> int:
    """Integrate every event committed so far, one transaction per batch; returns how many.

    With `wait`, queue behind a sequencer that is running (a reader that must see its own writes in
    the tree); without it, leave the work to that sequencer and return 0."""
    total = 0
    while True:
        with sessions.write() as session, session.begin():
            done = integrate_batch(session.connection(), batch=batch, wait=wait)
        if not done:
            return total
        total += done
        if done < batch:
            return total


class Sequencer(threading.Thread):
    """Integrates committed events every half of the maximum merge delay, so that an event is in the
    tree within about that delay of its commit (unless the database cannot keep up)."""

    def __init__(self, sessions: SessionFactory, *, merge_delay_seconds: float) -> None:
        super().__init__(daemon=True, name="audit-sequencer")
        self.sessions = sessions
        self.interval = merge_delay_seconds / 2
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                integrate_pending(self.sessions)
            except Exception:
                log.exception("integrating audit events failed; trying again")

    def stop(self) -> None:
        self.stopped.set()
