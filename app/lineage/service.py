"""Traces and the flags every lineage view carries.

`quarantined`: the record, or something upstream of it, was revoked. `stale`: something upstream of it
(or it) is a criteria version whose name has a newer MAJOR version. Both are computed over the trace's
own graph: an upstream trace holds every ancestor of every node in it, and a downstream trace is
completed with the ancestors of its nodes, so the flags are exact."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from app.lineage import repository
from app.lineage.repository import Direction
from app.records.models import Record

MAJOR_DIGITS = 6  # version_key of semver: "MMMMMM.mmmmmm.pppppp"


@dataclass(frozen=True)
class Node:
    id: str
    kind: str
    project_id: str
    name: str
    version: str
    version_key: str
    digest: str
    created_at: datetime
    created_by: str


@dataclass
class Graph:
    nodes: dict[str, Node]
    edges: list[tuple[str, str, str]]  # (child, parent, role)
    parents: dict[str, set[str]] = field(default_factory=dict)
    events: dict[str, list[str]] = field(default_factory=dict)
    revoked: set[str] = field(default_factory=set)
    outdated_criteria: set[str] = field(default_factory=set)
    _quarantined: set[str] | None = None
    _stale: set[str] | None = None

    def upstream_of(self, node: str) -> set[str]:
        seen: set[str] = set()
        stack = [node]
        while stack:
            for parent in self.parents.get(stack.pop(), ()):
                if parent not in seen:
                    seen.add(parent)
                    stack.append(parent)
        return seen

    def _downstream_closure(self, roots: set[str]) -> set[str]:
        """`roots` and everything below them in this graph, in one walk over the children map."""
        children: dict[str, list[str]] = {}
        for child, parent, _ in self.edges:
            children.setdefault(parent, []).append(child)
        seen = set(roots)
        stack = list(roots)
        while stack:
            for child in children.get(stack.pop(), ()):
                if child not in seen:
                    seen.add(child)
                    stack.append(child)
        return seen

    def quarantined(self, node: str) -> bool:
        if self._quarantined is None:
            self._quarantined = self._downstream_closure(self.revoked)
        return node in self._quarantined

    def stale(self, node: str) -> bool:
        if self._stale is None:
            self._stale = self._downstream_closure(self.outdated_criteria)
        return node in self._stale

    def status(self, node: str) -> str:
        events = self.events.get(node, [])
        if "revoked" in events:
            return "revoked"
        for event in reversed(events):
            if event in ("approved", "rejected"):
                return event
        return "proposed" if self.nodes[node].kind == "deployment" else "registered"


def load_graph(session: Session, start: Collection[str], direction: Direction) -> tuple[Graph, set[str]]:
    """The trace from `start` and the ids it reaches; flags are ready to read on the returned graph."""
    edges = [tuple(row) for row in session.execute(repository.edges_closure(start, direction))]
    reached = {e[1] for e in edges} if direction == "upstream" else {e[0] for e in edges}
    all_edges: set[tuple[str, str, str]] = set(edges)  # type: ignore[arg-type]
    if direction == "downstream":
        # ancestors of the downstream nodes decide their flags
        all_edges |= {tuple(row) for row in session.execute(repository.edges_closure({*start, *reached}, "upstream"))}  # type: ignore[misc]
    ids = {*start, *reached, *(e[0] for e in all_edges), *(e[1] for e in all_edges)}
    nodes = {row[0]: Node(*row) for row in session.execute(repository.nodes_by_ids(ids))}
    graph = Graph(nodes=nodes, edges=sorted(all_edges))
    for child, parent, _ in all_edges:
        graph.parents.setdefault(child, set()).add(parent)
    for record_id, event_type in session.execute(repository.events_of(ids)):
        graph.events.setdefault(record_id, []).append(event_type)
    graph.revoked = {rid for rid, types in graph.events.items() if "revoked" in types}
    graph.outdated_criteria = _outdated_criteria(session, [n for n in nodes.values() if n.kind == "criteria"])
    return graph, reached


def _outdated_criteria(session: Session, criteria: list[Node]) -> set[str]:
    if not criteria:
        return set()
    latest = {
        (project_id, name): key
        for project_id, name, key in session.execute(
            repository.latest_criteria_keys({c.project_id for c in criteria}, {c.name for c in criteria})
        )
    }
    return {
        c.id for c in criteria if int(latest[(c.project_id, c.name)][:MAJOR_DIGITS]) > int(c.version_key[:MAJOR_DIGITS])
    }


def quarantined_among(session: Session, ids: Collection[str]) -> set[str]:
    """Which of `ids` are quarantined (revoked themselves or downstream of a revocation)."""
    if not ids:
        return set()
    graph, _ = load_graph(session, ids, "upstream")
    return {i for i in ids if graph.quarantined(i)}


def node_summary(graph: Graph, node: str, project_names: dict[str, str]) -> dict[str, Any]:
    record = graph.nodes[node]
    quarantined = graph.quarantined(node)
    status = graph.status(node)
    flags = []
    if quarantined and status == "approved":
        flags.append("approved_but_quarantined")
    if graph.stale(node) and status == "approved":
        flags.append("approved_but_stale")
    return {
        "id": record.id,
        "kind": record.kind,
        "project": project_names.get(record.project_id, ""),
        "name": record.name,
        "version": record.version,
        "digest": record.digest,
        "created_at": record.created_at.isoformat().replace("+00:00", "Z"),
        "created_by": record.created_by,
        "status": status,
        "stale": graph.stale(node),
        "quarantined": quarantined,
        "flags": flags,
    }


def trace(session: Session, record: Record, direction: Direction, project_names: dict[str, str]) -> dict[str, Any]:
    """The trace of `record` in `direction` with every node's flags (see the module docstring)."""
    graph, reached = load_graph(session, [record.id], direction)
    included = {record.id, *reached}
    nodes = [node_summary(graph, n, project_names) for n in sorted(included, key=lambda i: (graph.nodes[i].kind, i))]
    edges = [
        {"child": child, "parent": parent, "role": role}
        for child, parent, role in graph.edges
        if child in included and parent in included
    ]
    return {"root": record.id, "direction": direction, "nodes": nodes, "edges": edges}
