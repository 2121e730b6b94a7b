"""Models and migrations agree, upgrade from empty works, and the server refuses a stale database."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from app.core import migrate
from app.core.db import make_engine
from app.core.migrate import DatabaseNotAtHeadError
from app.core.settings import Settings
from app.main import create_app


def test_upgrade_from_empty_then_models_match(empty_database: str) -> None:
    migrate.upgrade(empty_database)
    engine = make_engine(empty_database, pool_size=1)
    tables = set(inspect(engine).get_table_names())
    assert {"record", "record_edge", "audit_event", "project", "principal", "blob"} <= tables
    assert migrate.current_revision(engine) == migrate.head_revision(empty_database)
    # alembic check: autogenerate finds no difference between the models and the migrated schema
    command.check(migrate.alembic_config(empty_database))
    engine.dispose()


def test_downgrade_and_upgrade_again(empty_database: str) -> None:
    config = migrate.alembic_config(empty_database)
    migrate.upgrade(empty_database)
    command.downgrade(config, "base")
    migrate.upgrade(empty_database)
    engine = make_engine(empty_database, pool_size=1)
    assert migrate.current_revision(engine) == migrate.head_revision(empty_database)
    engine.dispose()


def test_one_head() -> None:
    script = ScriptDirectory.from_config(migrate.alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1


def test_server_refuses_database_not_at_head(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    with pytest.raises(DatabaseNotAtHeadError, match="rlhf-registry migrate"):
        create_app(settings)
