"""The items of an annotation batch, a page at a time, filtered by annotator and by disagreement, and the
figures of each annotator (app.qc.annotators). Everything is read from the batch's own items; nothing
is stored."""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from sqlalchemy.orm import Session

from app.core.errors import NotFound
from app.kinds.annotation_batch import ITEM_SCHEMA, load_items_for_qc
from app.kinds.policy import DEFAULT_POLICY
from app.kinds.tables import iter_blob_tables, rows_table
from app.qc.annotators import per_annotator
from app.qc.canonical import canonicalise, vote_counts
from app.qc.sessions import leave_one_out_agreement
from app.records.models import Record
from app.storage.base import BlobStore
from app.web import repository

PAGE_ITEMS = 50
TEXT_CHARS = 400
Disagreement = Literal["", "split", "against"]
DISAGREEMENTS: dict[str, str] = {
    "": "all items",
    "split": "pairs the annotators split on",
    "against": "items against the others' majority",
}
SHOWN = ("pair_id", "prompt_id", "annotator", "choice", "shown_first", "gold", "session_id", "submitted_at")


def batch_page(
    session: Session,
    store: BlobStore,
    record: Record,
    *,
    annotator: str,
    disagreement: Disagreement,
    page: int,
) -> dict[str, Any]:
    if record.kind != "annotation_batch":
        raise NotFound(f"record {record.id} is not an annotation batch")
    thin = load_items_for_qc(record.spec, store)
    canon = canonicalise(thin)
    counts = vote_counts(canon)
    policy = _policy(session, record)
    agrees = leave_one_out_agreement(canon, counts)
    votes = counts[canon.pair]
    split = votes.max(axis=1) < votes.sum(axis=1)
    keep = np.ones(canon.size, dtype=np.bool_)
    if annotator:
        keep &= canon.annotator == (canon.annotators.index(annotator) if annotator in canon.annotators else -1)
    if disagreement == "split":
        keep &= split
    elif disagreement == "against":
        keep &= agrees == 0
    matching = np.flatnonzero(keep)
    pages = max(1, math.ceil(matching.size / PAGE_ITEMS))
    page = min(page, pages)
    shown = matching[(page - 1) * PAGE_ITEMS : page * PAGE_ITEMS].tolist()
    texts = _rows(record, store, shown)
    same = votes[np.arange(canon.size), canon.label] - 1
    rows = [
        {
            "index": i,
            **texts[i],
            "others": int(votes[i].sum()) - 1,
            "others_same": int(same[i]),
            "agrees": int(agrees[i]),
            "split": bool(split[i]),
        }
        for i in shown
    ]
    return {
        "record": record,
        "annotators": per_annotator(canon, counts, float(policy["max_session_minutes"])),
        "annotator_names": canon.annotators,
        "max_session_minutes": policy["max_session_minutes"],
        "policy_version": (record.derived.get("qc") or {}).get("policy_version"),
        "rows": rows,
        "total": canon.size,
        "matching": int(matching.size),
        "page": page,
        "pages": pages,
        "page_items": PAGE_ITEMS,
        "filters": {"annotator": annotator, "disagreement": disagreement},
        "disagreements": DISAGREEMENTS,
        "split_pairs": int(np.count_nonzero(counts.max(axis=1) < counts.sum(axis=1))),
        "pairs": len(canon.pair_ids),
    }


def _policy(session: Session, record: Record) -> dict[str, Any]:
    """The QC policy version the batch was checked under (its qc names it), else the defaults."""
    version = (record.derived.get("qc") or {}).get("policy_version") or 0
    spec = session.execute(repository.policy_spec(record.project_id, int(version))).scalar() if version else None
    return {**DEFAULT_POLICY, **(spec or {})}


def _rows(record: Record, store: BlobStore, indices: list[int]) -> dict[int, dict[str, Any]]:
    """The shown fields and the two responses (cut for display) of the items at `indices`, read slice by
    slice so that a large batch's texts are never all held at once."""
    wanted = set(indices)
    found: dict[int, dict[str, Any]] = {}
    if not wanted:
        return found
    if record.spec.get("items") is not None:
        # through the item schema, as a blob's rows are: timestamps become datetimes either way
        items = record.spec["items"]
        table = rows_table([items[i] for i in indices], ITEM_SCHEMA, where=["spec", "items"])
        return {i: _row(row) for i, row in zip(indices, table.to_pylist(), strict=True)}
    offset = 0
    for table in iter_blob_tables(store, record.spec["items_blob"], ITEM_SCHEMA, where=["spec", "items"]):
        here = [i for i in indices if offset <= i < offset + table.num_rows]
        if here:
            picked = table.take([i - offset for i in here]).to_pylist()
            found.update({i: _row(row) for i, row in zip(here, picked, strict=True)})
        offset += table.num_rows
        if len(found) == len(wanted):
            break
    return found


def _row(item: dict[str, Any]) -> dict[str, Any]:
    row = {key: item.get(key) for key in SHOWN}
    for key in ("response_a", "response_b", "justification"):
        text = item.get(key)
        row[key] = text if not isinstance(text, str) or len(text) <= TEXT_CHARS else text[:TEXT_CHARS] + " …"
    return row
