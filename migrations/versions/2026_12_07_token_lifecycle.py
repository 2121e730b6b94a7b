"""Token lifecycle: tokens may expire, and audit events name the token that made each write.

`api_token.expires_at` is null for a token that never expires. `audit_event.token_id` is null for
events written by the CLI, by workers, or before this revision; it is part of an event's leaf data
only when set, so the hashes of existing events, and the proofs and checkpoints over them, stay valid.
Plain ADD/DROP COLUMN, not a batch: on SQLite a batch copies the table, and the audit log's triggers
refuse the DELETE that copying needs.

Revision ID: 2026_12_07_token_lifecycle
Revises: 2026_12_07_runs_outbox
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.core.db

revision: str = "2026_12_07_token_lifecycle"
down_revision: str | None = "2026_12_07_runs_outbox"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("api_token", sa.Column("expires_at", app.core.db.UtcDateTime(timezone=True), nullable=True))
    op.add_column("audit_event", sa.Column("token_id", sa.String(length=36), nullable=True))


def downgrade() -> None:
    op.drop_column("audit_event", "token_id")
    op.drop_column("api_token", "expires_at")
