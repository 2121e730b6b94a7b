"""`Idempotency-Key` on `POST /runs`: a client that did not see the answer to its POST (a timeout, a dropped
connection) sends it again with the same key and gets the run the first POST created, never a second run.

A key is the client's, within one principal and one project, and is kept with the run (the unique index
`uq_run_idempotency`). The same key with a different body is refused: what the client asked for differs,
so answering with the first run would hide its mistake. Bodies are compared by the sha256 of their RFC 8785
canonical JSON, so key order and whitespace do not matter.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.digests import digest_of
from app.core.errors import ValidationFailed
from app.runs.models import Run

HEADER = "Idempotency-Key"
KEY_MAX = 200


def _refuse(detail: str, msg: str) -> ValidationFailed:
    return ValidationFailed(detail, errors=[{"loc": ["header", HEADER], "msg": msg}])


def checked_key(key: str | None) -> str | None:
    """The header's key: 1 to 200 printable ASCII characters (a UUID, say), or None without the header."""
    if key is None:
        return None
    if not 0 < len(key) <= KEY_MAX or not all(" " < c <= "~" for c in key):
        raise _refuse(f"{HEADER} must be 1 to {KEY_MAX} printable ASCII characters without spaces", "invalid key")
    return key


def request_digest(body: Any) -> str:
    try:
        return digest_of(body)
    except ValueError as exc:
        raise ValidationFailed(f"the body cannot be canonicalised (RFC 8785): {exc}") from None


def earlier_run(session: Session, project_id: str, actor: str, key: str, digest: str) -> Run | None:
    """The run this principal created in this project with this key; refused if its body differed."""
    run = session.scalars(
        select(Run).where(Run.project_id == project_id, Run.created_by == actor, Run.idempotency_key == key)
    ).first()
    if run is not None and run.request_digest != digest:
        raise _refuse(
            f"{HEADER} {key!r} was used for run {run.id} with a different body; use a new key for a new run",
            "reused with a different body",
        )
    return run
