"""Agreement of annotators with labels from outside the pool: gold answers, AI suggestions and the labels
of an AI judge under human review."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from app.qc.agreement import kappa_from_confusion
from app.qc.canonical import CanonicalItems, Flags

# annotators whose labels are an AI judge's (a `judge` run names them ai:<judge name>@<version>)
AI_ANNOTATOR_PREFIX = "ai:"


def gold_accuracy(canon: CanonicalItems) -> dict[str, Any]:
    """Accuracy on gold items, overall and per annotator.

    Over items with a gold label: ``overall = #{label = gold} / n``; per annotator the same ratio over
    that annotator's gold items (one ``bincount`` each for hits and totals); ``share = n / #items``.
    ``{"overall", "per_annotator": {annotator: accuracy}, "n", "share"}``; ``overall`` is ``None``
    without gold items, ``share`` ``None`` for an empty batch.
    """
    has_gold = canon.gold >= 0
    n = int(has_gold.sum())
    hits = canon.label[has_gold] == canon.gold[has_gold]
    who = canon.annotator[has_gold]
    size = len(canon.annotators)
    totals = np.bincount(who, minlength=size)
    correct = np.bincount(who, weights=hits.astype(np.float64), minlength=size)
    per_annotator = {canon.annotators[i]: float(correct[i] / totals[i]) for i in np.flatnonzero(totals).tolist()}
    return {
        "overall": float(hits.mean()) if n else None,
        "per_annotator": per_annotator,
        "n": n,
        "share": n / canon.size if canon.size else None,
    }


def is_ai_annotator(name: str) -> bool:
    """Whether an annotator name is an AI judge's (``ai:<judge>``), whose labels are never human."""
    return name.startswith(AI_ANNOTATOR_PREFIX)


def _human_items(canon: CanonicalItems) -> Flags:
    human_annotator = np.array([not is_ai_annotator(name) for name in canon.annotators], dtype=np.bool_)
    return human_annotator[canon.annotator]


def ai_agreement(canon: CanonicalItems) -> dict[str, Any] | None:
    """How often humans agreed with the AI's label: the suggestion they were shown (AI-assisted
    batches), or the label an AI judge gave the pair they review (a batch that `reviews` an
    AI-labelled one).

    Over human items (annotator not ``ai:``) with an ``ai_choice``: ``agreement = #{label = ai} / n``
    and Cohen's kappa between the AI's and the humans' canonical labels (``kappa_from_confusion``;
    ``None`` when undefined). An AI judge's own items are left out: its choice is its ``ai_choice``,
    and a judge agreeing with itself is no evidence. A high raw agreement with a low kappa suggests
    rubber-stamping of a constant suggestion. ``None`` when no human item carries an AI label.
    """
    shown = (canon.ai >= 0) & _human_items(canon)
    n = int(shown.sum())
    if n == 0:
        return None
    ai = canon.ai[shown].astype(np.int64)
    human = canon.label[shown].astype(np.int64)
    confusion = np.bincount(ai * 3 + human, minlength=9).reshape(3, 3)
    kappa = float(kappa_from_confusion(confusion))
    return {
        "n": n,
        "agreement": float(np.mean(ai == human)),
        "kappa": None if np.isnan(kappa) else kappa,
    }


@dataclass(frozen=True)
class ReviewedSample:
    """What a review batch reviews: the pair ids the AI-labelled batch sampled for review, or ``None``
    when it drew no sample (then all its ``pairs`` pairs are the sample)."""

    pair_ids: tuple[str, ...] | None
    pairs: int


def review_coverage(canon: CanonicalItems, reviewed: ReviewedSample) -> dict[str, Any]:
    """How much of an AI-labelled batch's review sample a review batch covers.

    ``reviewed`` counts the sampled pair ids that carry at least one human item with an ``ai_choice``
    (any such pair id when the whole batch is the sample); ``coverage = reviewed / sampled`` (``None``
    for an empty sample). An agreement measured on a fraction of the sample says less than one
    measured on all of it, so the two are shown together.
    """
    judged = (canon.ai >= 0) & _human_items(canon)
    covered = set(canon.pair_ids.take(pa.array(np.unique(canon.pair[judged]))).to_pylist())
    if reviewed.pair_ids is None:
        sampled, count = reviewed.pairs, len(covered)
    else:
        sampled, count = len(reviewed.pair_ids), len(covered & set(reviewed.pair_ids))
    return {"sampled": sampled, "reviewed": count, "coverage": count / sampled if sampled else None}
