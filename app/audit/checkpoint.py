"""Signed checkpoints of the audit log: the C2SP checkpoint body signed with ed25519.

The body is the first three lines of a C2SP tlog checkpoint (https://c2sp.org/tlog-checkpoint):

    <origin>\\n<tree size>\\n<base64 root hash>\\n

`origin` names the log (the `RLHF_REGISTRY_AUDIT_ORIGIN` setting: give each deployment its own, e.g.
`registry.example.com/audit`), so a checkpoint of one registry can never pass for another's. The
signature is base64 ed25519 over the UTF-8 body (API.md); `key_id` is the first 16 bytes, in hex, of
SHA-256 over the raw public key, as `app.core.signing.SigningKey.key_id` computes it.

The server signs with these functions, and `rlhf-registry audit verify` checks with them.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from app.core.signing import SigningKey, key_id_of

CHECKPOINT_FIELDS = ("origin", "tree_size", "root_hash", "key_id", "signature")


class CheckpointError(ValueError):
    """A checkpoint that is malformed, signed by another key, or whose signature does not check."""


def checkpoint_body(origin: str, tree_size: int, root_hash: bytes) -> bytes:
    """The C2SP checkpoint body that is signed: origin, size and base64 root, one per line."""
    if not origin or "\n" in origin:
        raise CheckpointError("the origin must be one non-empty line")
    return f"{origin}\n{tree_size}\n{base64.b64encode(root_hash).decode()}\n".encode()


def sign_checkpoint(key: SigningKey, origin: str, tree_size: int, root_hash: bytes) -> dict[str, Any]:
    """`{origin, tree_size, root_hash (hex), key_id, signature (base64)}` for the tree given."""
    signature = key.sign(checkpoint_body(origin, tree_size, root_hash))
    return {
        "origin": origin,
        "tree_size": tree_size,
        "root_hash": root_hash.hex(),
        "key_id": key.key_id,
        "signature": base64.b64encode(signature).decode(),
    }


def verify_checkpoint(checkpoint: dict[str, Any], public_key: Ed25519PublicKey) -> tuple[int, bytes]:
    """Check a checkpoint's form, key id and signature; return its (tree size, root hash).

    Raises `CheckpointError` saying what is wrong."""
    if not isinstance(checkpoint, dict):
        raise CheckpointError("a checkpoint is a JSON object")
    missing = [name for name in CHECKPOINT_FIELDS if name not in checkpoint]
    if missing:
        raise CheckpointError(f"the checkpoint has no {', '.join(missing)}")
    size = checkpoint["tree_size"]
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise CheckpointError("tree_size must be a non-negative integer")
    try:
        root = bytes.fromhex(str(checkpoint["root_hash"]))
        signature = base64.b64decode(str(checkpoint["signature"]), validate=True)
    except (ValueError, binascii.Error) as exc:
        raise CheckpointError(f"root_hash must be hex and signature base64: {exc}") from exc
    if len(root) != 32:
        raise CheckpointError("root_hash must be 32 bytes")
    if checkpoint["key_id"] != key_id_of(public_key):
        raise CheckpointError(f"signed by key {checkpoint['key_id']}, not by the key given ({key_id_of(public_key)})")
    try:
        public_key.verify(signature, checkpoint_body(str(checkpoint["origin"]), size, root))
    except InvalidSignature as exc:
        raise CheckpointError("the checkpoint's signature does not verify") from exc
    return size, root
