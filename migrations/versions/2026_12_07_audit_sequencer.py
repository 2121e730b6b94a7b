"""Audit sequencer: writers insert events without a tree index; the sequencer integrates them.

`audit_event` gets a surrogate key `seq` (the order writers inserted events), a nullable, unique
`index` (null until the sequencer integrates the event), a nullable `chain_hash` (set with the index)
and `event_id` (in the leaf data of new events instead of their index). Existing events keep their
index, leaf hash and chain hash, so no leaf is rewritten and every checkpoint signed before stays
provable; `audit_head` stays, as the sequencer's state (size and chain of the integrated tree).

The immutability trigger now lets one UPDATE through: the sequencer's, which sets `index` and
`chain_hash` where both were null and changes nothing else. DELETE (and TRUNCATE) stay refused.

SQLite cannot change a primary key in place: the table is copied (its triggers are dropped around the
copy and created again).

Revision ID: 2026_12_07_audit_sequencer
Revises: 2026_12_07_token_lifecycle
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.core.db

revision: str = "2026_12_07_audit_sequencer"
down_revision: str | None = "2026_12_07_token_lifecycle"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REFUSED = "immutable_record: UPDATE on audit_event is refused; records are append-only"
# every column the sequencer's UPDATE must leave as it was
UNCHANGED = (
    "seq",
    "at",
    "actor",
    "action",
    "target",
    "project",
    "request_id",
    "policy_version",
    "payload_digest",
    "token_id",
    "event_id",
    "leaf_hash",
)
INTEGRATION = (
    'OLD."index" IS NULL AND NEW."index" IS NOT NULL AND OLD.chain_hash IS NULL AND NEW.chain_hash IS NOT NULL'
)
UNINTEGRATED_INDEX = 'CREATE INDEX ix_audit_event_unintegrated ON audit_event (seq) WHERE "index" IS NULL'


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _upgrade_postgresql()
    else:
        _upgrade_sqlite()
    op.execute(UNINTEGRATED_INDEX)


def _upgrade_postgresql() -> None:
    op.execute("DROP TRIGGER audit_event_immutable ON audit_event")
    op.drop_constraint("pk_audit_event", "audit_event", type_="primary")
    op.execute("ALTER TABLE audit_event ADD COLUMN seq BIGSERIAL NOT NULL")  # numbers the existing rows
    op.create_primary_key("pk_audit_event", "audit_event", ["seq"])
    op.alter_column("audit_event", "index", existing_type=sa.BigInteger(), nullable=True)
    op.alter_column("audit_event", "chain_hash", existing_type=sa.String(length=64), nullable=True)
    op.create_unique_constraint("uq_audit_event_index", "audit_event", ["index"])
    op.add_column("audit_event", sa.Column("event_id", sa.String(length=36), nullable=True))
    unchanged = " AND ".join(f"NEW.{c} IS NOT DISTINCT FROM OLD.{c}" for c in UNCHANGED)
    op.execute(
        f"""
        CREATE FUNCTION audit_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'UPDATE' AND {INTEGRATION} AND {unchanged} THEN
                RETURN NEW;
            END IF;
            RAISE EXCEPTION 'immutable_record: % on % is refused; records are append-only',
                TG_OP, TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
        END;
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER audit_event_immutable BEFORE UPDATE OR DELETE ON audit_event "
        "FOR EACH ROW EXECUTE FUNCTION audit_event_append_only()"
    )


def _event_columns(*, sequenced: bool) -> list[sa.Column[object]]:
    head = (
        [
            sa.Column("seq", sa.Integer(), nullable=False),
            sa.Column("index", sa.BigInteger(), nullable=True),
        ]
        if sequenced
        else [sa.Column("index", sa.BigInteger(), autoincrement=False, nullable=False)]
    )
    tail = [sa.Column("event_id", sa.String(length=36), nullable=True)] if sequenced else []
    return [
        *head,
        sa.Column("at", app.core.db.UtcDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=80), nullable=False),
        sa.Column("target", sa.String(length=300), nullable=False),
        sa.Column("project", sa.String(length=63), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("policy_version", sa.Integer(), nullable=True),
        sa.Column("payload_digest", sa.String(length=71), nullable=False),
        sa.Column("token_id", sa.String(length=36), nullable=True),
        *tail,
        sa.Column("leaf_hash", sa.String(length=64), nullable=False),
        sa.Column("chain_hash", sa.String(length=64), nullable=sequenced),
    ]


COPIED = (
    '"index", at, actor, action, target, project, request_id, policy_version, payload_digest, token_id, '
    "leaf_hash, chain_hash"
)


def _copy_sqlite(*, sequenced: bool) -> None:
    """Copy audit_event into a table of the new (or, downgrading, old) shape, with its triggers dropped."""
    op.execute("DROP TRIGGER audit_event_no_update")
    op.execute("DROP TRIGGER audit_event_no_delete")
    constraints: list[sa.Constraint] = (
        [
            sa.PrimaryKeyConstraint("seq", name="pk_audit_event"),
            sa.UniqueConstraint("index", name="uq_audit_event_index"),
        ]
        if sequenced
        else [sa.PrimaryKeyConstraint("index", name="pk_audit_event")]
    )
    op.create_table("audit_event_copy", *_event_columns(sequenced=sequenced), *constraints)
    if sequenced:  # the existing events are numbered in index order
        op.execute(f'INSERT INTO audit_event_copy (seq, {COPIED}) SELECT "index" + 1, {COPIED} FROM audit_event')
    else:
        op.execute(f"INSERT INTO audit_event_copy ({COPIED}) SELECT {COPIED} FROM audit_event")
    op.drop_table("audit_event")  # its indexes go with it
    op.rename_table("audit_event_copy", "audit_event")
    op.create_index("ix_audit_event_project", "audit_event", ["project"])
    op.execute(
        "CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_event "
        "BEGIN SELECT RAISE(ABORT, 'immutable_record: DELETE on audit_event is refused; "
        "records are append-only'); END"
    )


def _upgrade_sqlite() -> None:
    _copy_sqlite(sequenced=True)
    unchanged = " AND ".join(f"NEW.{c} IS OLD.{c}" for c in UNCHANGED)
    op.execute(
        f"CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event WHEN NOT ({INTEGRATION} AND {unchanged}) "
        f"BEGIN SELECT RAISE(ABORT, '{REFUSED}'); END"
    )


def downgrade() -> None:
    # events hashed without their index (and events not yet integrated) have no place in the old
    # schema, whose leaves hold their index: refuse rather than lose or rewrite them
    if (
        op.get_bind()
        .execute(sa.text('SELECT 1 FROM audit_event WHERE event_id IS NOT NULL OR "index" IS NULL LIMIT 1'))
        .first()
    ):
        raise RuntimeError("the audit log holds events written by the sequencer's schema; it cannot be downgraded")
    op.execute("DROP INDEX ix_audit_event_unintegrated")
    if op.get_bind().dialect.name != "postgresql":
        _copy_sqlite(sequenced=False)
        op.execute(
            "CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event "
            f"BEGIN SELECT RAISE(ABORT, '{REFUSED}'); END"
        )
        return
    op.execute("DROP TRIGGER audit_event_immutable ON audit_event")
    op.execute("DROP FUNCTION audit_event_append_only()")
    op.drop_column("audit_event", "event_id")
    op.drop_constraint("uq_audit_event_index", "audit_event", type_="unique")
    op.alter_column("audit_event", "chain_hash", existing_type=sa.String(length=64), nullable=False)
    op.drop_constraint("pk_audit_event", "audit_event", type_="primary")
    op.alter_column("audit_event", "index", existing_type=sa.BigInteger(), nullable=False)
    op.create_primary_key("pk_audit_event", "audit_event", ["index"])
    op.drop_column("audit_event", "seq")
    op.execute(
        "CREATE TRIGGER audit_event_immutable BEFORE UPDATE OR DELETE ON audit_event "
        "FOR EACH ROW EXECUTE FUNCTION refuse_change()"
    )
