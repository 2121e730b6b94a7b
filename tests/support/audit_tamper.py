"""Edit the audit log behind the service's back, as an attacker with database access would: the
immutability triggers are switched off (PostgreSQL) or dropped and recreated (SQLite) around the edit."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Engine, text


def edit_audit_log(engine: Engine, statement: str, params: Sequence[Mapping[str, Any]] | None = None) -> None:
    """Run `statement` (once, or once per mapping in `params`) on `audit_event` with its triggers off."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_event DISABLE TRIGGER audit_event_immutable"))
            conn.execute(text(statement), list(params) if params else None)
            conn.execute(text("ALTER TABLE audit_event ENABLE TRIGGER audit_event_immutable"))
            return
        triggers = conn.execute(
            text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_event'")
        ).all()
        for name, _ in triggers:
            conn.execute(text(f"DROP TRIGGER {name}"))
        conn.execute(text(statement), list(params) if params else None)
        for _, sql in triggers:
            conn.execute(text(sql))
