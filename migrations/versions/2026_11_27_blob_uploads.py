"""blob uploads: multipart upload sessions for large blobs (`POST /v1/blobs/uploads`)

Revision ID: 2026_11_27_blob_uploads
Revises: 2026_11_27_initial
Create Date: 2026-11-27 02:28:22.770506
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.core.db

revision: str = "2026_11_27_blob_uploads"
down_revision: str | None = "2026_11_27_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Mutable on purpose (deleted when completed, aborted or expired): not one of the append-only
    # tables, so no immutability trigger.
    op.create_table(
        "blob_upload",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("principal_id", sa.String(length=36), nullable=False),
        sa.Column("digest", sa.String(length=71), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("part_size", sa.BigInteger(), nullable=False),
        sa.Column("backend", sa.String(length=16), nullable=False),
        sa.Column("store_key", sa.String(length=1024), nullable=False),
        sa.Column("store_upload_id", sa.String(length=1024), nullable=False),
        sa.Column("created_at", app.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", app.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["principal_id"], ["principal.id"], name=op.f("fk_blob_upload_principal_id_principal")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_blob_upload")),
        sa.UniqueConstraint("principal_id", "digest", name=op.f("uq_blob_upload_principal_id_digest")),
    )
    with op.batch_alter_table("blob_upload", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_blob_upload_expires_at"), ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("blob_upload", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_blob_upload_expires_at"))
    op.drop_table("blob_upload")
