"""The hot statements seek an index on SQLite (the embedded default, which runs without ANALYZE
statistics): none scans a table or sorts, so their cost does not grow with what is stored."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Select, text

from app.records import repository
from app.state import AppState

SERIES = {"project_id": "p", "kind": "policy", "name": "default"}
PAGE = {"project_id": "p", "kind": "policy", "name": "default", "after_id": "a", "limit": 51}


def plan(state: AppState, stmt: Select[Any], params: dict[str, Any]) -> str:
    compiled = stmt.compile(dialect=state.sessions.engine.dialect)
    bound = {**compiled.params, **params}
    with state.sessions.engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "EXPLAIN QUERY PLAN " + str(compiled), tuple(bound[k] for k in compiled.positiontup or ())
        )
        return " | ".join(str(row[-1]) for row in rows)


@pytest.mark.parametrize(
    ("stmt", "params", "index"),
    [
        (repository.ID_BY_CONTENT, {**SERIES, "content_digest": "sha256:x"}, "ix_record_content"),
        (repository.LATEST, SERIES, "ix_record_series_order"),
        (repository.LATEST_VERSION_AND_SPEC, SERIES, "ix_record_series_order"),
        (repository.AT_VERSION, {**SERIES, "version": "3"}, "sqlite_autoindex_record"),
        (repository.read_page(by_name=False, after=True), PAGE, "ix_record_listing"),
        (repository.read_page(by_name=False, after=False), PAGE, "ix_record_listing"),
    ],
    ids=["by-content", "latest", "latest-version-and-spec", "at-version", "page-after", "first-page"],
)
def test_hot_record_statements_seek_one_index(
    sqlite_stack: AppState, stmt: Select[Any], params: dict[str, Any], index: str
) -> None:
    found = plan(sqlite_stack, stmt, params)
    assert "SEARCH record USING" in found and index in found, found
    assert "TEMP B-TREE" not in found and "SCAN" not in found, found


def test_the_content_index_orders_by_version(sqlite_stack: AppState) -> None:
    with sqlite_stack.sessions.engine.connect() as conn:
        columns = [row[2] for row in conn.execute(text("PRAGMA index_info('ix_record_content')"))]
    assert columns == ["project_id", "kind", "name", "content_digest", "version_key"]
