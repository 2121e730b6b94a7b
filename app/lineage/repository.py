"""Recursive traces over the lineage edge table: one WITH RECURSIVE query per direction, however many
hops (UNION removes repeated edges, so shared ancestors are visited once)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Literal

from sqlalchemy import Select, bindparam, func, select, true

from app.records.models import Record, RecordEdge, RecordEvent

Direction = Literal["upstream", "downstream"]


def edges_closure(start_ids: Collection[str], direction: Direction, *, lateral: bool = False) -> Select[str, str, str]:
    """Every edge reachable from `start_ids` going to parents (upstream) or children (downstream).

    `lateral` (PostgreSQL): write the recursive step as a LATERAL index lookup per reached edge. The
    planner otherwise assumes the recursive term grows tenfold and hash-joins a full scan of the edge
    table on every iteration, which dominates wide downstream traces.

    The statements are built once (building a recursive CTE costs a millisecond, more than running
    it for a registration's quarantine check) and bound to `start_ids` here."""
    return _CLOSURES[direction, lateral].params(start_ids=list(start_ids))


def _edges_closure(direction: Direction, lateral: bool) -> Select[str, str, str]:
    edge = RecordEdge
    columns = (edge.child_id, edge.parent_id, edge.role)
    near, far = (edge.child_id, "parent_id") if direction == "upstream" else (edge.parent_id, "child_id")
    base = select(*columns).where(near.in_(bindparam("start_ids", expanding=True))).cte("walk", recursive=True)
    if lateral:
        hop = select(*columns).where(near == base.c[far]).offset(0).lateral("hop")
        step = select(hop.c.child_id, hop.c.parent_id, hop.c.role).select_from(base).join(hop, true())
    else:
        step = select(*columns).join(base, near == base.c[far])
    walk = base.union(step)
    return select(walk.c.child_id, walk.c.parent_id, walk.c.role)


_CLOSURES: dict[tuple[Direction, bool], Select[str, str, str]] = {
    (direction, lateral): _edges_closure(direction, lateral)
    for direction in ("upstream", "downstream")
    for lateral in (False, True)
}


NODE_COLUMNS = (
    Record.id, Record.kind, Record.project_id, Record.name, Record.version, Record.version_key, Record.digest,
    Record.created_at, Record.created_by,
)  # fmt: skip


def nodes_by_ids(ids: Collection[str]) -> Select[str, str, str, str, str, str, str, datetime, str]:
    """The summary columns of records (no JSON documents: a trace never reads them)."""
    return select(*NODE_COLUMNS).where(Record.id.in_(ids))


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
