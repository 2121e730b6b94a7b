"""The RFC 9162 Merkle tree over the stored audit log: signed checkpoints and proofs.

Sizes come from the log's head row; every read below is bounded to `index < size`, so on a log that
grows while a request reads it (append-only, PostgreSQL read committed) the answer stays the one for
the size chosen at the start. Subtree hashes come from `app.audit.subtrees` (cached tiles of leaf
hashes), so a proof reads O(log n) hashes and fewer than a few thousand leaves.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit import proofs
from app.audit.checkpoint import sign_checkpoint
from app.audit.models import AuditHead
from app.audit.service import HEAD_ID
from app.audit.subtrees import leaf_hashes, subtree_hash
from app.core.errors import ValidationFailed
from app.core.signing import SigningKey


def log_size(session: Session) -> int:
    """The number of events in the log (its tree size)."""
    size = session.scalar(select(AuditHead.size).where(AuditHead.id == HEAD_ID))
    return int(size or 0)


def checkpoint(session: Session, key: SigningKey, origin: str) -> dict[str, Any]:
    """The signed checkpoint of the whole log as it stands (see `app.audit.checkpoint`)."""
    size = log_size(session)
    return sign_checkpoint(key, origin, size, subtree_hash(session, 0, size))


def _invalid(param: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, errors=[{"loc": ["query", param], "msg": message}])


def _tree_size(session: Session, requested: int | None, param: str) -> int:
    current = log_size(session)
    if requested is None:
        return current
    if requested > current:
        raise _invalid(param, f"{param} {requested} is larger than the log ({current} events)")
    return requested


def inclusion(session: Session, index: int, tree_size: int | None) -> dict[str, Any]:
    """The RFC 9162 inclusion proof of event `index` in the tree of the first `tree_size` events (the
    whole log when None), with the event's stored leaf hash."""
    size = _tree_size(session, tree_size, "tree_size")
    if not 0 <= index < size:
        raise _invalid("index", f"index {index} is not an event of a tree of size {size}")
    hashes = proofs.inclusion_proof(index, size, partial(subtree_hash, session))
    [leaf] = leaf_hashes(session, index, index + 1)
    return {"leaf_index": index, "tree_size": size, "leaf_hash": leaf.hex(), "hashes": [h.hex() for h in hashes]}


def consistency(session: Session, first: int, second: int | None) -> dict[str, Any]:
    """The RFC 9162 consistency proof that the tree of `second` events (the whole log when None)
    extends the tree of the first `first` events."""
    size = _tree_size(session, second, "to")
    if first < 1:
        raise _invalid("from", "from must be at least 1: every tree extends the empty one")
    if first > size:
        raise _invalid("from", f"from {first} is larger than to {size}")
    hashes = proofs.consistency_proof(first, size, partial(subtree_hash, session))
    return {"from": first, "to": size, "hashes": [h.hex() for h in hashes]}
