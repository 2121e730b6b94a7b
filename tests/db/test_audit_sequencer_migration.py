"""A log written before the sequencer keeps every leaf across the migration: the same indexes, leaf and
chain hashes, so a checkpoint signed before it stays consistent-provable with the checkpoints after."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic import command
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import text

from app.audit import sequencer, tree
from app.audit.chain import GENESIS, leaf_fields, leaf_hash, next_chain_hash
from app.audit.checkpoint import sign_checkpoint, verify_checkpoint
from app.audit.client_verify import replay_log
from app.audit.merkle import tree_hash
from app.audit.proofs import verify_consistency, verify_inclusion
from app.audit.service import AuditLog, event_to_dict, list_events_stmt, verify_log
from app.core import migrate
from app.core.db import SessionFactory, make_engine
from app.core.digests import digest_of
from app.core.signing import SigningKey
from app.core.uow import PendingAudit

BEFORE = "2026_12_07_token_lifecycle"
OLD_SIZE = 37
ORIGIN = "test/audit"


def _write_old_log(database_url: str) -> list[tuple[int, str, str]]:
    """The log as the write path before the sequencer appended it: the head locked, each event's index in
    its leaf data, the running chain; returns (index, leaf hash, chain hash) of each event."""
    engine = make_engine(database_url, pool_size=1)
    chain, written = GENESIS, []
    at = datetime(2026, 12, 1, tzinfo=UTC)
    with engine.begin() as conn:
        for index in range(OLD_SIZE):
            fields = leaf_fields(
                index=index,
                at=at,
                actor="alice",
                action="record.registered",
                target=f"record:{index}",
                project="p",
                request_id=f"req-{index}",
                policy_version=None,
                payload_digest=digest_of({"n": index}),
                token_id="tok" if index % 2 else None,
            )
            leaf = leaf_hash(fields)
            chain = next_chain_hash(chain, leaf)
            conn.execute(
                text(
                    'INSERT INTO audit_event ("index", at, actor, action, target, project, request_id, '
                    "policy_version, payload_digest, token_id, leaf_hash, chain_hash) VALUES (:index, :at, "
                    ":actor, :action, :target, :project, :request_id, :policy_version, :payload_digest, "
                    ":token_id, :leaf, :chain)"
                ),
                {**fields, "at": at, "token_id": fields.get("token_id"), "leaf": leaf, "chain": chain},
            )
            written.append((index, leaf, chain))
        conn.execute(
            text("INSERT INTO audit_head (id, size, chain_hash) VALUES (1, :size, :chain)"),
            {"size": OLD_SIZE, "chain": chain},
        )
    engine.dispose()
    return written


def test_upgrade_keeps_every_leaf_and_the_checkpoint_series(empty_database: str) -> None:
    command.upgrade(migrate.alembic_config(empty_database), BEFORE)
    written = _write_old_log(empty_database)
    key = SigningKey(Ed25519PrivateKey.generate())
    old_root = tree_hash(bytes.fromhex(leaf) for _, leaf, _ in written)
    saved = sign_checkpoint(key, ORIGIN, OLD_SIZE, old_root)

    migrate.upgrade(empty_database)
    engine = make_engine(empty_database, pool_size=2)
    sessions = SessionFactory(engine)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text('SELECT "index", leaf_hash, chain_hash FROM audit_event ORDER BY "index"'))
            assert [tuple(row) for row in rows] == written  # no leaf rewritten
        with sessions.write() as session, session.begin():
            events = [
                PendingAudit("bob", "record.registered", f"record:new-{i}", "p", {"i": i}, None) for i in range(5)
            ]
            AuditLog().append(session.connection(), "req-new", events)
        assert sequencer.integrate_pending(sessions) == 5
        with sessions.read() as session:
            assert verify_log(session).ok
            current = tree.checkpoint(session, key, ORIGIN)
            proof = tree.consistency(session, OLD_SIZE, None)
            inclusion = tree.inclusion(session, 3, None)
            dicts = [
                event_to_dict(e)
                for e in session.scalars(list_events_stmt(projects=None, project=None, record=None, after=None))
            ]
        old_size, old_signed_root = verify_checkpoint(saved, key.public)
        new_size, new_root = verify_checkpoint(current, key.public)
        assert new_size == OLD_SIZE + 5
        assert verify_consistency(
            old_size, new_size, old_signed_root, new_root, [bytes.fromhex(h) for h in proof["hashes"]]
        )
        assert inclusion["leaf_hash"] == written[3][1]
        assert verify_inclusion(
            3, new_size, bytes.fromhex(written[3][1]), [bytes.fromhex(h) for h in inclusion["hashes"]], new_root
        )
        # the client's replay mixes both leaf formats: old events by index, new ones by event id
        assert "event_id" not in dicts[0] and "event_id" in dicts[-1]
        assert replay_log(dicts, new_size) == new_root
    finally:
        engine.dispose()


def test_downgrade_is_refused_once_new_events_exist(empty_database: str) -> None:
    migrate.upgrade(empty_database)
    engine = make_engine(empty_database, pool_size=1)
    with engine.begin() as conn:
        AuditLog().append(conn, "req", [PendingAudit("bob", "x", "t", None, {}, None)])
    engine.dispose()
    with pytest.raises(RuntimeError, match="cannot be downgraded"):
        command.downgrade(migrate.alembic_config(empty_database), BEFORE)
