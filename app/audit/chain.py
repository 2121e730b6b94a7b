"""Leaf hashing (RFC 9162 section 2.1.1) and the running hash chain over audit events.

Leaf data is the canonical JSON (RFC 8785) of the event's fields; the leaf hash is
SHA-256(0x00 || leaf data). RFC 9162 leaves are the logged entries only: their position in the tree
is not part of them. Events are hashed when they are written, before the sequencer
(`app.audit.sequencer`) gives them a tree index, so their leaf data carries a random `event_id` and no
`index`. Events written before the sequencer existed carry their `index` and no `event_id`, and keep the
leaf data, hashes, proofs and checkpoints they always had.

The chain hash of the event at tree index i is SHA-256(chain(i-1) || leaf(i)), with 32 zero bytes
before the first event, computed by the sequencer as it integrates; any edit, insertion or removal
breaks every later chain hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from app.core.digests import canonical_json

GENESIS = "00" * 32
LEAF_KEYS = (
    "index",
    "at",
    "actor",
    "action",
    "target",
    "project",
    "request_id",
    "policy_version",
    "payload_digest",
)
# Leaf fields present only when they have a value: events written before a field existed (or without a
# value for it) keep the leaf data, and so the hashes, proofs and checkpoints, they always had.
OPTIONAL_LEAF_KEYS = ("token_id",)


def format_time(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def leaf_fields(
    *,
    index: int | None,
    at: datetime,
    actor: str,
    action: str,
    target: str,
    project: str | None,
    request_id: str,
    policy_version: int | None,
    payload_digest: str,
    token_id: str | None = None,
    event_id: str | None = None,
) -> dict[str, Any]:
    """The leaf data of an event: with `event_id` (events hashed before they had a tree index) the
    index is left out; without it (events of the log before the sequencer) the index is part of it."""
    fields: dict[str, Any] = {} if event_id is not None else {"index": index}
    fields |= {
        "at": format_time(at),
        "actor": actor,
        "action": action,
        "target": target,
        "project": project,
        "request_id": request_id,
        "policy_version": policy_version,
        "payload_digest": payload_digest,
    }
    if token_id is not None:
        fields["token_id"] = token_id  # the API token that made the write, by id
    if event_id is not None:
        fields["event_id"] = event_id
    return fields


def leaf_hash(fields: dict[str, Any]) -> str:
    """RFC 9162 leaf hash: SHA-256 over 0x00 followed by the leaf's canonical JSON."""
    return hashlib.sha256(b"\x00" + canonical_json(fields)).hexdigest()


def leaf_hash_of_event(event: Mapping[str, Any]) -> str:
    """The leaf hash of an event as `GET /v1/audit` returns it (its `LEAF_KEYS`, and its
    `OPTIONAL_LEAF_KEYS` that are not null; other keys ignored). An event with an `event_id` was hashed
    before it had a tree index, and its `index` is not part of its leaf.

    Raises KeyError when a leaf field is missing."""
    fields = {key: event[key] for key in LEAF_KEYS}
    fields.update({key: event[key] for key in OPTIONAL_LEAF_KEYS if event.get(key) is not None})
    if event.get("event_id") is not None:
        del fields["index"]
        fields["event_id"] = event["event_id"]
    return leaf_hash(fields)


def next_chain_hash(previous: str, leaf: str) -> str:
    return hashlib.sha256(bytes.fromhex(previous) + bytes.fromhex(leaf)).hexdigest()
