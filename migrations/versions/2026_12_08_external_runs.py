"""External runs: a run trained outside the registry holds the hash of its own token, and when it expires.

Both are null for every other run, and for an external run once it has ended. Plain ADD COLUMN and a
unique index (not a batch: on SQLite a batch copies the table).

Revision ID: 2026_12_08_external_runs
Revises: 2026_12_07_audit_sequencer
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.core.db

revision: str = "2026_12_08_external_runs"
down_revision: str | None = "2026_12_07_audit_sequencer"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("run", sa.Column("token_hash", sa.String(length=64), nullable=True))
    op.add_column("run", sa.Column("token_expires_at", app.core.db.UtcDateTime(timezone=True), nullable=True))
    op.create_index("uq_run_token_hash", "run", ["token_hash"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_run_token_hash", table_name="run")
    op.drop_column("run", "token_expires_at")
    op.drop_column("run", "token_hash")
