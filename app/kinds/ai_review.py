"""AI-labelled annotation batches and their human review.

An AI judge's labels are cheap and many, and no better than the judge: a batch of them is registered
`ai_labelled` (every annotator `ai:<judge>`, every item's `ai_choice` its `choice`) with a sample of its
pairs for humans to label again. The humans' labels come back as a batch that `reviews` it, each item
beside the AI's label of its pair, which the registry checks against the reviewed batch: a reviewer may
disagree with the AI, never restate what it said. The review's agreement is what decides whether the
AI labels may enter a dataset (`ai_review_insufficient` in preference_dataset)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.errors import ValidationFailed
from app.kinds.tables import RowErrors
from app.lineage.service import quarantined_among
from app.qc.reference_labels import AI_ANNOTATOR_PREFIX, ReviewedSample
from app.records.models import Record, RecordEdge

# what a review is checked on, of its own items and of the reviewed batch's
PAIR_COLUMNS = ["pair_id", "prompt_id", "response_a", "response_b", "choice", "ai_choice"]


def check_labellers(items: pa.Table, spec: Mapping[str, Any]) -> None:
    """Who labelled the items fits what the batch claims: an AI-labelled batch holds one AI judge's
    label per pair (its review compares a human label with *the* AI label of a pair) and lists only its
    own pairs in `review_sample`; any other batch holds no `ai:` annotator, so AI labels cannot pass as
    human ones and skip the review."""
    errors = RowErrors(["spec", "items"])
    by_ai = pc.starts_with(items["annotator"], AI_ANNOTATOR_PREFIX)
    if not spec["ai_labelled"]:
        errors.add_mask(
            by_ai, "annotator", "an ai: annotator's labels are an AI judge's: register them as an ai_labelled batch"
        )
        errors.raise_if_any("AI labels in a batch that is not ai_labelled")
        return
    errors.add_mask(pc.invert(by_ai), "annotator", "an AI-labelled batch holds only AI judges' labels (ai:<judge>)")
    differs = pc.invert(pc.fill_null(pc.equal(items["ai_choice"], items["choice"]), False))
    errors.add_mask(differs, "ai_choice", "an AI judge's item carries its label as ai_choice too, equal to choice")
    counts = items.group_by("pair_id").aggregate([([], "count_all")])
    repeated = counts.filter(pc.greater(counts["count_all"], 1))
    for pair_id, n in zip(repeated["pair_id"].to_pylist(), repeated["count_all"].to_pylist(), strict=True):
        errors.add(
            ["spec", "items", "pair_id"], f"pair {pair_id!r} has {n} labels; an AI-labelled batch has one per pair"
        )
    pair_ids = set(items["pair_id"].to_pylist())
    for index, pair_id in enumerate(spec["review_sample"] or []):
        if pair_id not in pair_ids:
            errors.add(["spec", "review_sample", index], f"{pair_id!r} is not a pair of this batch")
    errors.raise_if_any("the AI-labelled batch is not valid")


def _canonical(choice: pa.ChunkedArray, a: pa.ChunkedArray, b: pa.ChunkedArray) -> pa.ChunkedArray:
    """A label as first/second/tie, first being the smaller text, so two items showing one pair in
    swapped A/B slots compare (canonical.py)."""
    first = pc.if_else(pc.fill_null(pc.greater(a, b), False), "b", "a")
    return pc.if_else(pc.equal(choice, "tie"), "tie", pc.if_else(pc.equal(choice, first), "first", "second"))


def _same_responses(rows: pa.Table) -> pa.ChunkedArray:
    """Whether a review item shows the judged pair's two responses, in either slot order."""
    a, b, ja, jb = (rows[name] for name in ("response_a", "response_b", "judged_a", "judged_b"))
    same_order = pc.and_(pc.equal(a, ja), pc.equal(b, jb))
    swapped = pc.and_(pc.equal(a, jb), pc.equal(b, ja))
    return pc.fill_null(pc.or_(same_order, swapped), False)


def check_reviewable(spec: Mapping[str, Any], reviewed: Record) -> None:
    """The batch a review names is AI-labelled, and the review itself is not: it holds humans' labels."""
    if not reviewed.spec.get("ai_labelled"):
        raise ValidationFailed(
            f"batch {reviewed.name} v{reviewed.version} is not AI-labelled; only an ai_labelled batch is reviewed",
            errors=[{"loc": ["body", "reviews"], "msg": "not an ai_labelled batch"}],
        )
    if spec["ai_labelled"]:
        raise ValidationFailed(
            "a review holds humans' labels of the AI's pairs, so it is not ai_labelled",
            errors=[{"loc": ["body", "spec", "ai_labelled"], "msg": "a review is not AI-labelled"}],
        )


def check_review(items: pa.Table, reviewed: Record, judged: pa.Table) -> None:
    """A review batch's items (PAIR_COLUMNS) against the AI-labelled batch it `reviews` (`judged`: that
    batch's items on the same pair ids). Every review item labels a pair of its `review_sample` (of the
    batch, when it drew none), with the same prompt and responses, and carries as `ai_choice` the AI's
    label of that pair, in the review item's own A/B slots."""
    label = f"{reviewed.name} v{reviewed.version}"
    ai = pa.table(
        {
            "pair_id": judged["pair_id"],
            "judged_prompt_id": judged["prompt_id"],
            "judged_a": judged["response_a"],
            "judged_b": judged["response_b"],
            "judged_label": _canonical(judged["choice"], judged["response_a"], judged["response_b"]),
        }
    )
    numbered = items.select(PAIR_COLUMNS).append_column("row", pa.array(range(items.num_rows), pa.int64()))
    rows = numbered.join(ai, "pair_id", join_type="left outer").sort_by("row")
    errors = RowErrors(["spec", "items"])
    found = pc.is_valid(rows["judged_label"])
    errors.add_mask(pc.invert(found), "pair_id", f"not a pair of the reviewed batch {label}")
    sample = reviewed.spec.get("review_sample")
    if sample is not None:
        outside = pc.and_(found, pc.invert(pc.is_in(rows["pair_id"], pa.array(sample, pa.string()))))
        errors.add_mask(outside, "pair_id", f"not in the review_sample of {label}")
    same_prompt = pc.fill_null(pc.equal(rows["prompt_id"], rows["judged_prompt_id"]), False)
    same_responses = _same_responses(rows)
    errors.add_mask(pc.and_(found, pc.invert(same_prompt)), "prompt_id", f"not the prompt of this pair in {label}")
    errors.add_mask(
        pc.and_(found, pc.invert(same_responses)), "response_a", f"not the responses of this pair in {label}"
    )
    same = pc.and_(same_prompt, same_responses)
    errors.add_mask(pc.is_null(rows["ai_choice"]), "ai_choice", "required in a review: the AI's label of the pair")
    claimed = _canonical(rows["ai_choice"], rows["response_a"], rows["response_b"])
    misquoted = pc.and_(same, pc.invert(pc.fill_null(pc.equal(claimed, rows["judged_label"]), True)))
    errors.add_mask(misquoted, "ai_choice", f"not the AI's label of this pair in {label}")
    errors.raise_if_any(f"the review does not match the AI labels of {label}")


def reviewed_sample(reviewed: Record) -> ReviewedSample:
    """What a review of `reviewed` is measured against: its sample, or all its pairs without one."""
    sample = reviewed.spec.get("review_sample")
    return ReviewedSample(
        pair_ids=None if sample is None else tuple(sample), pairs=int(reviewed.derived["qc"]["counts"]["pairs"])
    )


def review_agreement(review: Record | None) -> float | None:
    """The AI-versus-human agreement a review batch measured (None: no review, or nothing compared)."""
    if review is None:
        return None
    figures = review.derived.get("qc", {}).get("ai_agreement")
    return None if figures is None else float(figures["agreement"])


def best_reviews(session: Session, project_id: str, batch_ids: Iterable[str]) -> dict[str, Record]:
    """For each AI-labelled batch of `batch_ids` that some batch of the project reviews: the review
    with the highest agreement. A revoked review, or one downstream of a revocation, does not count."""
    ids = list(batch_ids)
    if not ids:
        return {}
    stmt = (
        select(RecordEdge.parent_id, Record)
        .join(Record, Record.id == RecordEdge.child_id)
        .where(
            RecordEdge.parent_id.in_(ids),
            RecordEdge.role == "reviews",
            Record.kind == "annotation_batch",
            Record.project_id == project_id,
        )
        .order_by(Record.id)
    )
    rows = session.execute(stmt).all()
    revoked = quarantined_among(session, {review.id for _, review in rows})
    best: dict[str, Record] = {}
    for batch_id, review in rows:
        if review.id not in revoked and (batch_id not in best or _rank(review) > _rank(best[batch_id])):
            best[batch_id] = review
    return best


def _rank(review: Record) -> float:
    agreement = review_agreement(review)
    return -1.0 if agreement is None else agreement
