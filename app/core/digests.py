"""Canonical JSON (RFC 8785, JCS) and sha256 digests in the `sha256:<hex>` form used across the API."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import rfc8785

DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


def canonical_json(value: Any) -> bytes:
    """Serialise `value` per RFC 8785 (sorted keys, no whitespace, ECMAScript number form)."""
    return bytes(rfc8785.dumps(value))


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def digest_of(value: Any) -> str:
    """`sha256:<hex>` of the canonical JSON form of `value`."""
    return "sha256:" + sha256_hex(canonical_json(value))


def is_digest(value: str) -> bool:
    return DIGEST_RE.match(value) is not None


def hex_of(digest: str) -> str:
    return digest.removeprefix("sha256:")
