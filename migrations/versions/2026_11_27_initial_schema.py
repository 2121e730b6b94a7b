"""initial schema

Revision ID: 2026_11_27_initial
Revises: 
Create Date: 2026-11-27 01:50:21.588025
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql
from sqlalchemy import Text

import app.core.db

revision: str = '2026_11_27_initial'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Defence in depth (DESIGN.md, Principles 1): the database itself refuses UPDATE and DELETE on the
# append-only tables, whatever client writes to it. PostgreSQL also refuses TRUNCATE.
IMMUTABLE_TABLES = ("record", "record_edge", "record_blob", "record_event", "audit_event")


def create_immutability_triggers() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(
            """
            CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'immutable_record: % on % is refused; records are append-only',
                    TG_OP, TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
            END;
            $$
            """
        )
        for table in IMMUTABLE_TABLES:
            op.execute(
                f"CREATE TRIGGER {table}_immutable BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION refuse_change()"
            )
            op.execute(
                f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION refuse_change()"
            )
    else:
        for table in IMMUTABLE_TABLES:
            for action in ("UPDATE", "DELETE"):
                op.execute(
                    f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, 'immutable_record: {action} on {table} is refused; "
                    "records are append-only'); END"
                )


def drop_immutability_triggers() -> None:
    dialect = op.get_bind().dialect.name
    for table in IMMUTABLE_TABLES:
        if dialect == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS {table}_immutable ON {table}")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        else:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
    if dialect == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS refuse_change()")


def upgrade() -> None:
    op.create_table('audit_event',
    sa.Column('index', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('at', app.core.db.UtcDateTime(timezone=True), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('action', sa.String(length=80), nullable=False),
    sa.Column('target', sa.String(length=300), nullable=False),
    sa.Column('project', sa.String(length=63), nullable=True),
    sa.Column('request_id', sa.String(length=64), nullable=False),
    sa.Column('policy_version', sa.Integer(), nullable=True),
    sa.Column('payload_digest', sa.String(length=71), nullable=False),
    sa.Column('leaf_hash', sa.String(length=64), nullable=False),
    sa.Column('chain_hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('index', name=op.f('pk_audit_event'))
    )
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_event_project'), ['project'], unique=False)

    op.create_table('audit_head',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('chain_hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_head'))
    )
    op.create_table('blob',
    sa.Column('digest', sa.String(length=71), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('created_at', app.core.db.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('digest', name=op.f('pk_blob'))
    )
    op.create_table('principal',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('is_global_admin', sa.Boolean(), nullable=False),
    sa.Column('created_at', app.core.db.UtcDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_principal')),
    sa.UniqueConstraint('name', name=op.f('uq_principal_name'))
    )
    op.create_table('project',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=63), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('created_at', app.core.db.UtcDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_project')),
    sa.UniqueConstraint('name', name=op.f('uq_project_name'))
    )
    op.create_table('api_token',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('principal_id', sa.String(length=36), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=False),
    sa.Column('created_at', app.core.db.UtcDateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', app.core.db.UtcDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['principal_id'], ['principal.id'], name=op.f('fk_api_token_principal_id_principal')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_token')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_token_token_hash'))
    )
    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_token_principal_id'), ['principal_id'], unique=False)

    op.create_table('blob_uploader',
    sa.Column('digest', sa.String(length=71), nullable=False),
    sa.Column('principal_id', sa.String(length=36), nullable=False),
    sa.Column('uploaded_at', app.core.db.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['digest'], ['blob.digest'], name=op.f('fk_blob_uploader_digest_blob')),
    sa.ForeignKeyConstraint(['principal_id'], ['principal.id'], name=op.f('fk_blob_uploader_principal_id_principal')),
    sa.PrimaryKeyConstraint('digest', 'principal_id', name=op.f('pk_blob_uploader'))
    )
    op.create_table('membership',
    sa.Column('project_id', sa.String(length=36), nullable=False),
    sa.Column('principal_id', sa.String(length=36), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('updated_at', app.core.db.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['principal_id'], ['principal.id'], name=op.f('fk_membership_principal_id_principal')),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], name=op.f('fk_membership_project_id_project')),
    sa.PrimaryKeyConstraint('project_id', 'principal_id', name=op.f('pk_membership'))
    )
    with op.batch_alter_table('membership', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_membership_principal_id'), ['principal_id'], unique=False)

    op.create_table('record',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('project_id', sa.String(length=36), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('version', sa.String(length=40), nullable=False),
    sa.Column('version_key', sa.String(length=40), nullable=False),
    sa.Column('digest', sa.String(length=71), nullable=False),
    sa.Column('content_digest', sa.String(length=71), nullable=False),
    sa.Column('created_at', app.core.db.UtcDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('parents', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('spec', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('blobs', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('derived', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], name=op.f('fk_record_project_id_project')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_record')),
    sa.UniqueConstraint('project_id', 'kind', 'name', 'version', name=op.f('uq_record_project_id_kind_name_version'))
    )
    with op.batch_alter_table('record', schema=None) as batch_op:
        batch_op.create_index('ix_record_content', ['project_id', 'kind', 'name', 'content_digest'], unique=False)
        batch_op.create_index(batch_op.f('ix_record_digest'), ['digest'], unique=False)
        batch_op.create_index('ix_record_listing', ['project_id', 'kind', 'id'], unique=False)
        batch_op.create_index('ix_record_series_order', ['project_id', 'kind', 'name', 'version_key'], unique=False)

    op.create_table('record_series',
    sa.Column('project_id', sa.String(length=36), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('last_version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], name=op.f('fk_record_series_project_id_project')),
    sa.PrimaryKeyConstraint('project_id', 'kind', 'name', name=op.f('pk_record_series'))
    )
    op.create_table('record_blob',
    sa.Column('record_id', sa.String(length=36), nullable=False),
    sa.Column('path', sa.String(length=1000), nullable=False),
    sa.Column('digest', sa.String(length=71), nullable=False),
    sa.ForeignKeyConstraint(['digest'], ['blob.digest'], name=op.f('fk_record_blob_digest_blob')),
    sa.ForeignKeyConstraint(['record_id'], ['record.id'], name=op.f('fk_record_blob_record_id_record')),
    sa.PrimaryKeyConstraint('record_id', 'path', name=op.f('pk_record_blob'))
    )
    with op.batch_alter_table('record_blob', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_record_blob_digest'), ['digest'], unique=False)

    op.create_table('record_edge',
    sa.Column('child_id', sa.String(length=36), nullable=False),
    sa.Column('parent_id', sa.String(length=36), nullable=False),
    sa.Column('role', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['child_id'], ['record.id'], name=op.f('fk_record_edge_child_id_record')),
    sa.ForeignKeyConstraint(['parent_id'], ['record.id'], name=op.f('fk_record_edge_parent_id_record')),
    sa.PrimaryKeyConstraint('child_id', 'parent_id', 'role', name=op.f('pk_record_edge'))
    )
    with op.batch_alter_table('record_edge', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_record_edge_parent_id'), ['parent_id'], unique=False)

    op.create_table('record_event',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('record_id', sa.String(length=36), nullable=False),
    sa.Column('type', sa.String(length=40), nullable=False),
    sa.Column('data', sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), 'postgresql'), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('created_at', app.core.db.UtcDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['record_id'], ['record.id'], name=op.f('fk_record_event_record_id_record')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_record_event'))
    )
    with op.batch_alter_table('record_event', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_record_event_record_id'), ['record_id'], unique=False)

    create_immutability_triggers()
    # ### end Alembic commands ###


def downgrade() -> None:
    drop_immutability_triggers()
    # ### commands auto generated by Alembic - please adjust! ###
    with op.batch_alter_table('record_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_record_event_record_id'))

    op.drop_table('record_event')
    with op.batch_alter_table('record_edge', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_record_edge_parent_id'))

    op.drop_table('record_edge')
    with op.batch_alter_table('record_blob', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_record_blob_digest'))

    op.drop_table('record_blob')
    op.drop_table('record_series')
    with op.batch_alter_table('record', schema=None) as batch_op:
        batch_op.drop_index('ix_record_series_order')
        batch_op.drop_index('ix_record_listing')
        batch_op.drop_index(batch_op.f('ix_record_digest'))
        batch_op.drop_index('ix_record_content')

    op.drop_table('record')
    with op.batch_alter_table('membership', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_membership_principal_id'))

    op.drop_table('membership')
    op.drop_table('blob_uploader')
    with op.batch_alter_table('api_token', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_token_principal_id'))

    op.drop_table('api_token')
    op.drop_table('project')
    op.drop_table('principal')
    op.drop_table('blob')
    op.drop_table('audit_head')
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_event_project'))

    op.drop_table('audit_event')
    # ### end Alembic commands ###
