"""Signed checkpoints of the audit log: the C2SP checkpoint body signed with ed25519.

The body is the first three lines of a C2SP tlog checkpoint (https://c2sp.org/tlog-checkpoint):

    <origin>\\n<tree size>\\n<base64 root hash>\\n

`origin` names the log (the `RLHF_REGISTRY_AUDIT_ORIGIN` setting: give each deployment its own, e.g.
`registry.example.com/audit`), so a checkpoint of one registry can never pass for another's. The
signature is base64 ed25519 over the UTF-8 body (API.md); `key_id` is the first 16 bytes, in hex, of
SHA-256 over the raw public key, as `app.core.signing.SigningKey.key_id` computes it.

The same signature is served in two forms: JSON (`sign_checkpoint`) and a C2SP signed note
(https://c2sp.org/signed-note, `signed_note`): the body, a blank line, then one line
`\u2014 <key name> <base64(4-byte key id || 64-byte signature)>`. The note's key name is the origin,
and its key id is the first 4 bytes of SHA-256(key name || 0x0A || 0x01 || raw public key), 0x01
being the signed-note signature type of Ed25519. Tools that read signed notes (Go's
`golang.org/x/mod/sumdb/note`, witnesses of transparency logs) check it with the verifier key
`note_verifier_key` writes.

The server signs with these functions, and `rlhf-registry audit verify` checks with them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from app.core.signing import SigningKey, key_id_of

CHECKPOINT_FIELDS = ("origin", "tree_size", "root_hash", "key_id", "signature")
ED25519_NOTE_TYPE = b"\x01"  # the signed-note signature type of Ed25519
NOTE_DASH = "\u2014"  # each signature line of a signed note starts with an em dash and a space


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


def _raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _check_key_name(name: str) -> None:
    # signed-note key names are non-empty and hold no white space and no "+" (the verifier key's separator)
    if not name or "+" in name or any(c.isspace() for c in name):
        raise CheckpointError(f"{name!r} cannot name a signed-note key: it must be non-empty, without spaces or '+'")


def note_key_hash(name: str, public: Ed25519PublicKey) -> bytes:
    """The signed note's 4-byte key id: SHA-256(name || 0x0A || 0x01 || raw public key)[:4]."""
    return hashlib.sha256(name.encode() + b"\n" + ED25519_NOTE_TYPE + _raw(public)).digest()[:4]


def note_verifier_key(name: str, public: Ed25519PublicKey) -> str:
    """The verifier key in the text form signed-note tools read: `<name>+<key id, 8 hex>+<base64(0x01 ||
    raw public key)>`."""
    _check_key_name(name)
    encoded = base64.b64encode(ED25519_NOTE_TYPE + _raw(public)).decode()
    return f"{name}+{note_key_hash(name, public).hex()}+{encoded}"


def signed_note(key: SigningKey, origin: str, tree_size: int, root_hash: bytes) -> str:
    """The checkpoint as a C2SP signed note, signed by `key` under the key name `origin`."""
    _check_key_name(origin)
    body = checkpoint_body(origin, tree_size, root_hash)
    signature = note_key_hash(origin, key.public) + key.sign(body)
    return f"{body.decode()}\n{NOTE_DASH} {origin} {base64.b64encode(signature).decode()}\n"
