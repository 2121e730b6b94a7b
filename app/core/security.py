"""Bearer tokens (random, stored only as a sha256 hash) and the role model."""

from __future__ import annotations

import hashlib
import secrets
from typing import Final

ROLES: Final = ("viewer", "annotator", "trainer", "approver", "admin")
TOKEN_PREFIX: Final = "rlr_"
# an external run's token (app.runs.external): not an API token, and never one's prefix
RUN_TOKEN_PREFIX: Final = "rlrun_"


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def bearer_secret(authorization: str | None) -> str | None:
    """The secret of an `Authorization: Bearer <secret>` header as authentication reads it: the scheme in
    any case, whitespace around the secret dropped. None when the header is absent, of another scheme or
    names no secret. Authentication and the write rate limit both parse the header here, so that two
    spellings of one header are one token to both."""
    if not authorization or authorization[:7].lower() != "bearer ":
        return None
    return authorization[7:].strip() or None


def hash_token(token: str) -> str:
    # Tokens carry 256 bits of entropy, so a plain sha256 (no salt, no stretching) cannot be brute-forced
    # and allows an indexed lookup.
    return hashlib.sha256(token.encode()).hexdigest()


def role_satisfies(held: str, allowed: frozenset[str]) -> bool:
    """`admin` holds every role in its project; any role includes `viewer`."""
    return held == "admin" or held in allowed or "viewer" in allowed
