"""A series (project, kind, name) through its versions: the history page, the previous and next version
of a record, and what changed from one criteria version to the next (the same structured diff and
classification as GET .../criteria/{name}/diff)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.orm import Session

from app.access.models import Project
from app.core.errors import NotFound
from app.kinds.criteria import criteria_diff_of
from app.kinds.registry import kinds_where
from app.kinds.registry import label_of as kind_label
from app.lineage import service as lineage_service
from app.records.models import Record
from app.web import repository

# A long diff value (a whole gold example, a playbook) is shown cut; the record JSON holds all of it.
VALUE_CHARS = 600


def criteria_diff(previous: Record | None, record: Record) -> dict[str, Any] | None:
    """The diff from the previous criteria version to `record`, with its level; None for the first."""
    if previous is None or record.kind != "criteria":
        return None
    diff = criteria_diff_of(previous.spec, record.spec)
    return {
        "from": {"id": previous.id, "version": previous.version},
        "level": diff["level"],
        "changes": [
            {**change, "before_text": _shown(change["before"]), "after_text": _shown(change["after"])}
            for change in diff["changes"]
        ],
    }


def _shown(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        text = value
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        text = "\n".join(f"{i + 1}. {v}" for i, v in enumerate(value)) or "(none)"
    else:
        text = json.dumps(value, indent=1, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= VALUE_CHARS else text[:VALUE_CHARS] + " …"


def neighbours(session: Session, record: Record) -> dict[str, Any]:
    """The previous and next versions of `record` in its series as {id, version} (None at either end),
    the previous record itself for a diff, and where the history page is."""
    previous = session.execute(repository.previous_version(record)).scalar()
    following = session.execute(repository.next_version(record)).first()
    return {
        "previous": {"id": previous.id, "version": previous.version} if previous else None,
        "next": {"id": following.id, "version": following.version} if following else None,
        "previous_record": previous,
    }


def history_page(session: Session, project: Project, kind: str, name: str) -> dict[str, Any]:
    """Every version of a series, newest first, with its status flags, who registered it and what
    tells versions of that kind apart (a criteria change level, a batch's QC gate, a checkpoint's step)."""
    ids = list(session.scalars(repository.series_versions(project.id, kind, name)))
    if not ids:
        raise NotFound(f"project {project.name} has no {kind_label(kind)} named {name}")
    records = {r.id: r for r in session.scalars(repository.records_by_ids(ids))}
    graph, _ = lineage_service.load_graph(session, ids, "upstream")
    names = {project.id: project.name}
    versions: list[dict[str, Any]] = []
    previous: Record | None = None
    for record_id in ids:
        record = records[record_id]
        entry = {**lineage_service.node_summary(graph, record_id, names), **_distinguishing(record)}
        diff = criteria_diff(previous, record)
        if diff is not None:
            entry["change_level"] = diff["level"]
            entry["change_count"] = len(diff["changes"])
        versions.append(entry)
        previous = record
    versions.reverse()
    return {
        "project": project.name,
        "kind": kind,
        "kind_label": kind_label(kind),
        "trained": kind in kinds_where(trained=True),
        "name": name,
        "versions": versions,
    }


def _distinguishing(record: Record) -> dict[str, Any]:
    derived = record.derived
    if record.kind == "annotation_batch":
        qc = derived.get("qc") or {}
        return {"gate": qc.get("gate"), "items": derived.get("items")}
    if record.kind in kinds_where(trained=True):
        return {"step": derived.get("step"), "run_id": record.spec.get("run_id")}
    if record.kind == "evaluation":
        return {"target": derived.get("target")}
    return {}
