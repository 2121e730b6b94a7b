"""The client-side checks of `audit verify`, on plain data: replaying events and checking extensions."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.audit import proofs
from app.audit.chain import LEAF_KEYS, leaf_fields, leaf_hash
from app.audit.checkpoint import CheckpointError, checkpoint_body, sign_checkpoint, verify_checkpoint
from app.audit.client_verify import VerifyFailed, check_extends, check_root, replay_log
from app.audit.merkle import EMPTY_ROOT, tree_hash
from app.core.signing import SigningKey

T0 = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)


def events(n: int) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        fields = leaf_fields(
            index=i,
            at=T0 + timedelta(seconds=i),
            actor="alice",
            action="record.registered",
            target=f"record:{i}",
            project="p",
            request_id=f"req-{i}",
            policy_version=1,
            payload_digest="sha256:" + "1" * 64,
        )
        out.append({**fields, "leaf_hash": leaf_hash(fields)})
    return out


def root_of(log: list[dict[str, Any]]) -> bytes:
    return tree_hash(bytes.fromhex(e["leaf_hash"]) for e in log)


def test_leaf_keys_are_the_leaf_fields() -> None:
    assert tuple(events(1)[0])[: len(LEAF_KEYS)] == LEAF_KEYS


def test_replay_recomputes_the_root_and_ignores_later_events() -> None:
    log = events(12)
    assert replay_log(log, 12) == root_of(log)
    assert replay_log(log, 5) == root_of(log[:5])
    assert replay_log([], 0).hex() == EMPTY_ROOT
    check_root(replay_log(log, 12), root_of(log))
    with pytest.raises(VerifyFailed):
        check_root(replay_log(log, 11), root_of(log))


@pytest.mark.parametrize(
    ("edit", "index", "words"),
    [
        (lambda log: log[3].update(actor="mallory"), 3, "leaf hash"),
        (lambda log: log.pop(6), 6, "missing"),
        (lambda log: log[9].pop("request_id"), 9, "no field"),
        (lambda log: log.pop(), 11, "ends after 11"),
    ],
)
def test_replay_names_the_first_bad_event(edit: Any, index: int, words: str) -> None:
    log = events(12)
    edit(log)
    with pytest.raises(VerifyFailed) as caught:
        replay_log(log, 12)
    assert caught.value.index == index and words in str(caught.value)
    assert str(caught.value).startswith(f"audit event {index}:")


def test_check_extends() -> None:
    log = events(40)
    leaves = [bytes.fromhex(e["leaf_hash"]) for e in log]
    old, new = (17, tree_hash(leaves[:17])), (40, tree_hash(leaves))
    proof = proofs.consistency_proof(17, 40, lambda s, e: tree_hash(leaves[s:e]))
    check_extends(old, new, proof)
    check_extends(new, new, [])
    check_extends((0, bytes.fromhex(EMPTY_ROOT)), new, [])
    with pytest.raises(VerifyFailed, match="fewer"):
        check_extends(new, old, proof)
    with pytest.raises(VerifyFailed, match="does not extend"):
        check_extends((17, tree_hash(leaves[1:18])), new, proof)
    with pytest.raises(VerifyFailed):
        check_extends((0, b"\x00" * 32), new, [])


def test_checkpoint_signatures() -> None:
    key = SigningKey(Ed25519PrivateKey.generate())
    root = tree_hash([b"\x01" * 32])
    signed = sign_checkpoint(key, "example.com/log", 1, root)
    assert verify_checkpoint(signed, key.public) == (1, root)
    key.public.verify(base64.b64decode(signed["signature"]), checkpoint_body("example.com/log", 1, root))
    for field, value in (("origin", "other.com/log"), ("tree_size", 2), ("root_hash", "00" * 32)):
        with pytest.raises(CheckpointError, match="signature"):
            verify_checkpoint({**signed, field: value}, key.public)
    with pytest.raises(CheckpointError, match="signed by key"):
        verify_checkpoint(signed, Ed25519PrivateKey.generate().public_key())
    with pytest.raises(CheckpointError, match="no signature"):
        verify_checkpoint({k: v for k, v in signed.items() if k != "signature"}, key.public)
    with pytest.raises(CheckpointError):
        checkpoint_body("two\nlines", 1, root)
