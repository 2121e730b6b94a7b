"""Recursive traces over the lineage edge table: one WITH RECURSIVE query per direction, however many
hops (UNION removes repeated edges, so shared ancestors are visited once)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Literal

from sqlalchemy import Select, func, select

from app.records.models import Record, RecordEdge, RecordEvent

Direction = Literal["upstream", "downstream"]


def edges_closure(start_ids: Collection[str], direction: Direction) -> Select[str, str, str]:
    """Every edge reachable from `start_ids` going to parents (upstream) or children (downstream)."""
    edge = RecordEdge
    columns = (edge.child_id, edge.parent_id, edge.role)
    if direction == "upstream":
        base = select(*columns).where(edge.child_id.in_(start_ids)).cte("walk", recursive=True)
        step = select(*columns).join(base, edge.child_id == base.c.parent_id)
    else:
        base = select(*columns).where(edge.parent_id.in_(start_ids)).cte("walk", recursive=True)
        step = select(*columns).join(base, edge.parent_id == base.c.child_id)
    walk = base.union(step)
    return select(walk.c.child_id, walk.c.parent_id, walk.c.role)


def records_by_ids(ids: Collection[str]) -> Select[Record]:
    return select(Record).where(Record.id.in_(ids))


def events_of(ids: Collection[str]) -> Select[str, str]:
    return (
        select(RecordEvent.record_id, RecordEvent.type).where(RecordEvent.record_id.in_(ids)).order_by(RecordEvent.id)
    )


def latest_criteria_keys(project_ids: Collection[str], names: Collection[str]) -> Select[str, str, str]:
    return (
        select(Record.project_id, Record.name, func.max(Record.version_key))
        .where(Record.kind == "criteria", Record.project_id.in_(project_ids), Record.name.in_(names))
        .group_by(Record.project_id, Record.name)
    )
