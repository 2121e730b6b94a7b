"""Subtree hashes over the stored log (cached tiles plus a streamed tail) equal the RFC 9162 hashes of
the same leaves in memory, for every range a proof asks for, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import random
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert

from app.audit import proofs, subtrees, tree
from app.audit.merkle import tree_hash
from app.audit.models import AuditEvent, AuditHead
from app.audit.service import HEAD_ID, verify_log
from app.core.signing import SigningKey
from app.state import AppState
from tests.support.audit_tamper import edit_audit_log

SIZE = 300


def _fill(state: AppState, size: int) -> list[bytes]:
    """`size` synthetic events written straight into an empty log; their leaf hashes."""
    leaves = [hashlib.sha256(f"leaf {i}".encode()).digest() for i in range(size)]
    at = datetime.now(UTC)
    rows = [
        {
            "index": i,
            "at": at,
            "actor": "synthetic",
            "action": "test.event",
            "target": f"n:{i}",
            "project": None,
            "request_id": "synthetic",
            "policy_version": None,
            "payload_digest": "sha256:" + "0" * 64,
            "leaf_hash": leaf.hex(),
            "chain_hash": "0" * 64,
        }
        for i, leaf in enumerate(leaves)
    ]
    with state.sessions.engine.begin() as conn:
        conn.execute(insert(AuditEvent), rows)
        conn.execute(insert(AuditHead), [{"id": HEAD_ID, "size": size, "chain_hash": "0" * 64}])
    return leaves


@pytest.fixture
def small_tiles(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(subtrees, "TILE", 8)
    return 8


def test_every_proof_range_matches_the_in_memory_tree(fresh_stack: AppState, small_tiles: int) -> None:
    leaves = _fill(fresh_stack, SIZE)
    rng = random.Random(6962)
    sizes = sorted({1, 7, 8, 9, 64, 255, 256, 257, SIZE, *rng.sample(range(1, SIZE + 1), 20)})
    with fresh_stack.sessions.read() as session:
        for size in sizes:
            ranges = {r for index in {0, size - 1, rng.randrange(size)} for r in proofs.inclusion_ranges(index, size)}
            ranges |= {
                r for first in {1, size, rng.randrange(1, size + 1)} for r in proofs.consistency_ranges(first, size)
            }
            for start, end in sorted(ranges | {(0, size)}):
                assert subtrees.subtree_hash(session, start, end) == tree_hash(leaves[start:end]), (start, end)


def test_checkpoint_and_proofs_over_cached_tiles(fresh_stack: AppState, small_tiles: int) -> None:
    leaves = _fill(fresh_stack, SIZE)
    key = fresh_stack.signing_key
    with fresh_stack.sessions.read() as session:
        signed = tree.checkpoint(session, key, "test/log")
        root = tree_hash(leaves)
        assert signed["tree_size"] == SIZE and signed["root_hash"] == root.hex()
        for index in (0, 100, 255, 256, SIZE - 1):
            proof = tree.inclusion(session, index, None)
            path = [bytes.fromhex(h) for h in proof["hashes"]]
            assert proofs.verify_inclusion(index, SIZE, leaves[index], path, root)
        for first in (1, 8, 100, 256, SIZE):
            proof = tree.consistency(session, first, None)
            path = [bytes.fromhex(h) for h in proof["hashes"]]
            assert proofs.verify_consistency(first, SIZE, tree_hash(leaves[:first]), root, path)


def test_the_server_keeps_proving_what_it_served(fresh_stack: AppState, small_tiles: int) -> None:
    """A leaf rewritten behind the server's back inside a cached tile changes nothing it signs, while
    verify (which recomputes from the rows) reports the edit."""
    _fill(fresh_stack, 64)
    key: SigningKey = fresh_stack.signing_key
    with fresh_stack.sessions.read() as session:
        before = tree.checkpoint(session, key, "test/log")
    edit_audit_log(
        fresh_stack.sessions.engine, 'UPDATE audit_event SET leaf_hash = :h WHERE "index" = 3', [{"h": "ab" * 32}]
    )
    with fresh_stack.sessions.read() as session:
        assert tree.checkpoint(session, key, "test/log") == before
        assert verify_log(session).ok is False


def test_a_cached_tile_whose_rows_changed_is_computed_again(fresh_stack: AppState, small_tiles: int) -> None:
    """A tile computed from rows that later vanished (a rolled-back write, a restored backup) is not
    served again: the last leaf of every cached tile is checked against the rows on each use."""
    _fill(fresh_stack, 64)
    key: SigningKey = fresh_stack.signing_key
    with fresh_stack.sessions.read() as session:
        tree.checkpoint(session, key, "test/log")
    replaced = [hashlib.sha256(f"restored {i}".encode()).digest() for i in range(64)]
    edit_audit_log(
        fresh_stack.sessions.engine,
        'UPDATE audit_event SET leaf_hash = :h WHERE "index" = :i',
        [{"h": leaf.hex(), "i": i} for i, leaf in enumerate(replaced)],
    )
    with fresh_stack.sessions.read() as session:
        assert tree.checkpoint(session, key, "test/log")["root_hash"] == tree_hash(replaced).hex()


def test_tile_cache_is_bounded() -> None:
    cache = subtrees.TileCache(max_tiles=3)
    for tile in range(5):
        cache.put(tile, bytes([tile]) * 32, bytes(32))
    assert cache.get(0) is None and cache.get(1) is None
    assert cache.get(4) == (bytes([4]) * 32, bytes(32))
