"""What each page shows, gathered through the same services the REST routes use (access, records,
lineage, decisions, runs). No FastAPI here: a page's route only checks the request and renders."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.access import service as access_service
from app.access.models import Project
from app.access.service import Identity
from app.core.errors import NotFound
from app.decisions import service as decisions_service
from app.lineage import service as lineage_service
from app.lineage.repository import Direction
from app.records import service as records_service
from app.records.models import Record
from app.web import choice, repository, series
from app.web.lineage_layout import KIND_ORDER, Drawing, kind_label, layout
from app.web.runs import run_label
from app.web.templating import pretty_json

VIEW = frozenset({"viewer"})
RECENT_RUNS = 50
JSON_TEXT_LIMIT = 200_000
FIGURE_ROWS = 80
FIGURE_DEPTH = 3
MAX_DRAWN_NODES = 300


def home(session: Session, actor: Identity) -> list[dict[str, Any]]:
    roles = access_service.roles_by_project(session, actor)
    return [
        {
            "name": p.name,
            "description": p.description,
            "role": "admin (global)" if actor.is_global_admin else roles.get(p.name, ""),
        }
        for p in access_service.list_projects(session, actor)
    ]


def _kind_rank(kind: str) -> int:
    return KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)


def project_overview(session: Session, project: Project) -> dict[str, Any]:
    rows = session.execute(repository.latest_of_every_series(project.id)).all()
    graph, _ = lineage_service.load_graph(session, [r.id for r in rows], "upstream")
    batches = [r.id for r in rows if r.kind == "annotation_batch"]
    qc = {rid: derived.get("qc", {}) for rid, derived in session.execute(repository.derived_of(batches))}
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        summary = lineage_service.node_summary(graph, row.id, {project.id: project.name})
        entry = {**summary, "versions": row.versions}
        if row.id in qc:
            entry["qc"] = {
                "gate": qc[row.id].get("gate"),
                "gate_reasons": qc[row.id].get("gate_reasons") or [],
                "kappa_mean": (qc[row.id].get("cohen_kappa") or {}).get("mean"),
                "alpha": qc[row.id].get("krippendorff_alpha"),
                "item_count": (qc[row.id].get("counts") or {}).get("items"),
            }
        groups.setdefault(row.kind, []).append(entry)
    kinds = [
        {"kind": kind, "label": kind_label(kind), "records": groups[kind]}
        for kind in sorted(groups, key=lambda k: (_kind_rank(k), k))
    ]
    runs = list(session.scalars(repository.recent_runs(project.id, RECENT_RUNS)))
    ordinals = {row.id: int(row.ordinal) for row in session.execute(repository.run_ordinals(project.id))}
    produced = [rid for run in runs for rid in run.outputs]
    named = {row.id: row for row in session.execute(repository.record_names(produced))} if produced else {}
    run_rows = [
        {
            "run": run,
            "label": run_label(run, int(ordinals[run.id])),
            "outputs": [named[rid] for rid in run.outputs if rid in named],
        }
        for run in runs
    ]
    entries = [e for group in groups.values() for e in group]
    return {
        "project": {"name": project.name, "description": project.description},
        "kinds": kinds,
        "candidates": choice.candidates(session, project.id, [e["name"] for e in groups.get("policy_checkpoint", [])]),
        "runs": run_rows,
        "counts": {
            "series": len(entries),
            "stale": sum(e["stale"] for e in entries),
            "quarantined": sum(e["quarantined"] for e in entries),
            "gate_block": sum(1 for e in entries if e.get("qc", {}).get("gate") == "block"),
            "gate_warn": sum(1 for e in entries if e.get("qc", {}).get("gate") == "warn"),
        },
    }


def visible_record(session: Session, actor: Identity, record_id: str) -> tuple[Record, str]:
    """The record and its project's name, or not_found for a record in a project the actor cannot see."""
    record, project_name = records_service.get_visible(session, record_id)
    if not access_service.can_view_project(session, actor, record.project_id):
        raise NotFound(f"record {record_id} not found")
    return record, project_name


def json_text(value: Any) -> tuple[str, bool]:
    """Pretty JSON for a page, cut at a size a browser renders quickly; True when cut."""
    text = pretty_json(value)
    if len(text) <= JSON_TEXT_LIMIT:
        return text, False
    return text[:JSON_TEXT_LIMIT], True


def figures(value: Any, prefix: str = "", depth: int = 0) -> list[tuple[str, Any]]:
    """Scalar leaves of a derived document as (dotted key, value) rows; short scalar lists joined. Big
    or deeper structures stay in the full JSON beside the table."""
    rows: list[tuple[str, Any]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if isinstance(item, dict) and depth < FIGURE_DEPTH and len(item) <= 20:
                rows += figures(item, name, depth + 1)
            elif isinstance(item, list) and len(item) <= 8 and all(not isinstance(x, dict | list) for x in item):
                rows.append((name, ", ".join(str(x) for x in item) if item else "—"))
            elif not isinstance(item, dict | list):
                rows.append((name, item))
    return rows[:FIGURE_ROWS]


def record_files(session: Session, record: Record) -> list[dict[str, Any]]:
    """Every blob the record references (its own and those the server derived), with sizes."""
    return [
        {"path": path, "digest": digest, "size": size}
        for path, digest, size in session.execute(repository.files_of(record.id))
    ]


def record_page(session: Session, record: Record, project_name: str) -> dict[str, Any]:
    names = {record.project_id: project_name}
    children = session.execute(repository.children_of(record.id)).all()
    graph, _ = lineage_service.load_graph(session, [record.id, *(c.id for c in children)], "upstream")
    summary = lineage_service.node_summary(graph, record.id, names)
    parents = [
        {**lineage_service.node_summary(graph, p["id"], names), "role": p["role"]}
        for p in record.parents
        if p["id"] in graph.nodes
    ]
    child_rows = [
        {**lineage_service.node_summary(graph, c.id, names), "role": c.role} for c in children if c.id in graph.nodes
    ]
    spec_text, spec_cut = json_text(record.spec)
    derived_text, derived_cut = json_text(record.derived)
    events = [decisions_service.event_to_dict(e) for e in decisions_service.events_of(session, record.id)]
    run_id = record.spec.get("run_id")
    run = session.execute(repository.run_by_id(run_id)).scalar() if isinstance(run_id, str) else None
    around = series.neighbours(session, record)
    return {
        "record": record,
        "project": project_name,
        "summary": summary,
        "kind_label": kind_label(record.kind),
        "parents": parents,
        "children": child_rows,
        "packages": [c for c in child_rows if c["kind"] == "handoff_package"],
        "files": record_files(session, record),
        "spec_text": spec_text,
        "spec_cut": spec_cut,
        "derived_text": derived_text,
        "derived_cut": derived_cut,
        "figures": figures(record.derived),
        "qc": record.derived.get("qc") if record.kind == "annotation_batch" else None,
        "events": events,
        "run": (
            {"id": run.id, "label": run_label(run, int(session.execute(repository.run_ordinal(run)).scalar_one()))}
            if run is not None and run.project_id == record.project_id
            else None
        ),
        "previous": around["previous"],
        "next": around["next"],
        "criteria_diff": series.criteria_diff(around["previous_record"], record),
        "choice": choice.of_record(session, record),
    }


def lineage_page(session: Session, record: Record, project_name: str, direction: Direction) -> dict[str, Any]:
    graph = lineage_service.trace(session, record, direction, {record.project_id: project_name})
    drawing: Drawing | None = layout(graph) if len(graph["nodes"]) <= MAX_DRAWN_NODES else None
    nodes = sorted(graph["nodes"], key=lambda n: (_kind_rank(n["kind"]), n["name"], n["version"]))
    by_id = {n["id"]: n for n in graph["nodes"]}
    return {
        "record": record,
        "project": project_name,
        "direction": direction,
        "drawing": drawing,
        "nodes": nodes,
        "edges": [
            {**edge, "child_node": by_id[edge["child"]], "parent_node": by_id[edge["parent"]]}
            for edge in graph["edges"]
        ],
        "too_large": drawing is None,
        "max_drawn": MAX_DRAWN_NODES,
        "kind_label": kind_label,
    }
