"""Content lookups in version order come from one index.

The idempotency check of a registration without a declared version looks up the series' earliest
record with the same content digest. With the index on (project, kind, name, content_digest) alone,
SQLite's planner preferred the series-order index for the ORDER BY and scanned every version of the
series, so a registration got slower as its series grew. With version_key last in the index, the
lookup is one index seek on both databases.

Revision ID: 2026_12_06_record_content_order
Revises: 2026_11_27_training_runs
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "2026_12_06_record_content_order"
down_revision: str | None = "2026_11_27_training_runs"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD = ["project_id", "kind", "name", "content_digest"]


# Plain index statements, not a batch: on SQLite a batch could copy the table, and the record table's
# triggers refuse the DELETE that copying needs.
def upgrade() -> None:
    op.drop_index("ix_record_content", table_name="record")
    op.create_index("ix_record_content", "record", [*OLD, "version_key"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_record_content", table_name="record")
    op.create_index("ix_record_content", "record", OLD, unique=False)
