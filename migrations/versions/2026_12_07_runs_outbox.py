"""runs outbox: re-dispatch bookkeeping and idempotency keys on the run row

A queued run records how often its broker message was sent and when the dispatcher sends it again, so a
broker outage or a flushed queue never strands it; a POST with an Idempotency-Key records the key and the
digest of its body, so that a retry returns the first run.

Revision ID: 2026_12_07_runs_outbox
Revises: 2026_12_06_record_content_order
Create Date: 2026-12-07 21:20:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.core.db

revision: str = "2026_12_07_runs_outbox"
down_revision: str | None = "2026_12_06_record_content_order"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Plain ADD COLUMN and index statements, not a table copy: on SQLite a copy of `run` would have to drop
# the table `run_event` refers to.
def upgrade() -> None:
    op.add_column("run", sa.Column("dispatch_attempts", sa.Integer(), server_default="0", nullable=False))
    op.add_column("run", sa.Column("next_dispatch_at", app.core.db.UtcDateTime(timezone=True), nullable=True))
    op.add_column("run", sa.Column("idempotency_key", sa.String(length=200), nullable=True))
    op.add_column("run", sa.Column("request_digest", sa.String(length=71), nullable=True))
    # runs queued before this revision are due at once: the dispatcher sends them again, and a duplicate
    # delivery is a no-op (a worker claims a run only while it is queued)
    op.execute("UPDATE run SET next_dispatch_at = created_at WHERE status = 'queued'")
    op.create_index("ix_run_dispatch", "run", ["status", "next_dispatch_at"], unique=False)
    op.create_index("uq_run_idempotency", "run", ["project_id", "created_by", "idempotency_key"], unique=True)


def downgrade() -> None:
    op.drop_index("uq_run_idempotency", table_name="run")
    op.drop_index("ix_run_dispatch", table_name="run")
    for column in ("request_digest", "idempotency_key", "next_dispatch_at", "dispatch_attempts"):
        op.drop_column("run", column)
