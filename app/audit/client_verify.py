"""What `rlhf-registry audit verify` checks on the client's side, trusting nothing the server computed.

Two checks, both on plain data so that any client can run them:

- `replay_log`: recompute every event's RFC 9162 leaf hash from its fields (the function the server
  uses, `app.audit.chain.leaf_hash_of_event`) and the tree's root from those, and stop at the first
  event that is missing or whose stored leaf hash disagrees with its fields;
- `check_extends`: an RFC 9162 consistency proof shows that today's signed checkpoint extends one saved
  earlier, i.e. that no event counted then has changed or gone since.

Checkpoint signatures are checked by `app.audit.checkpoint.verify_checkpoint`.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from app.audit.chain import leaf_hash_of_event
from app.audit.merkle import EMPTY_ROOT, TreeBuilder
from app.audit.proofs import verify_consistency


class VerifyFailed(Exception):
    """The log does not verify; `index` names the first bad event where one is to blame."""

    def __init__(self, problem: str, index: int | None = None) -> None:
        super().__init__(problem if index is None else f"audit event {index}: {problem}")
        self.problem = problem
        self.index = index


def replay_log(events: Iterable[Mapping[str, Any]], tree_size: int) -> bytes:
    """The RFC 9162 root over the first `tree_size` events, recomputed from their fields.

    `events` is the log in index order (later events are not read). Raises `VerifyFailed` naming the
    first event that is missing or whose leaf hash does not match its fields."""
    builder = TreeBuilder()
    if tree_size == 0:
        return builder.root()
    for event in events:
        expected = builder.size
        if event.get("index") != expected:
            raise VerifyFailed(f"missing (the log goes on with event {event.get('index')})", expected)
        try:
            leaf = leaf_hash_of_event(event)
        except KeyError as exc:
            raise VerifyFailed(f"has no field {exc}", expected) from exc
        if not hmac.compare_digest(leaf, str(event.get("leaf_hash"))):
            raise VerifyFailed("its leaf hash does not match its fields (the event was changed)", expected)
        builder.append(bytes.fromhex(leaf))
        if builder.size == tree_size:
            return builder.root()
    raise VerifyFailed(f"missing (the log ends after {builder.size} of {tree_size} events)", builder.size)


def check_root(recomputed: bytes, signed: bytes) -> None:
    """The root recomputed from the events must be the signed checkpoint's."""
    if not hmac.compare_digest(recomputed, signed):
        raise VerifyFailed(
            f"the root recomputed from the events ({recomputed.hex()}) is not the signed one ({signed.hex()})"
        )


def check_extends(saved: tuple[int, bytes], current: tuple[int, bytes], proof: Sequence[bytes]) -> None:
    """Does the tree `current` (size, root) extend the tree `saved`? `proof` is the RFC 9162
    consistency proof from the saved size to the current one (empty when the sizes are equal).

    Every tree extends the empty one, so a saved size of 0 needs only the empty tree's root."""
    (old_size, old_root), (new_size, new_root) = saved, current
    if new_size < old_size:
        raise VerifyFailed(f"the log has {new_size} events, fewer than the {old_size} of the saved checkpoint")
    if old_size == 0:
        if old_root.hex() != EMPTY_ROOT:
            raise VerifyFailed("the saved checkpoint of the empty log does not carry the empty tree's root")
        return
    if not verify_consistency(old_size, new_size, old_root, new_root, proof):
        raise VerifyFailed(
            f"the log today ({new_size} events) does not extend the saved checkpoint ({old_size} events): "
            "an event it counted was changed or removed"
        )
