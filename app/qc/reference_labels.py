"""Agreement of annotators with labels from outside the pool: gold answers and AI suggestions."""

from __future__ import annotations

from typing import Any

import numpy as np

from app.qc.agreement import kappa_from_confusion
from app.qc.canonical import CanonicalItems


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


def ai_agreement(canon: CanonicalItems) -> dict[str, Any] | None:
    """How often humans took the AI suggestion they were shown (AI-assisted batches).

    Over items with an ``ai_choice``: ``agreement = #{label = ai} / n`` and Cohen's kappa between the
    AI's and the humans' canonical labels (``kappa_from_confusion``; ``None`` when undefined). A high
    raw agreement with a low kappa suggests rubber-stamping of a constant suggestion.
    ``None`` when no item carries an AI suggestion.
    """
    shown = canon.ai >= 0
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
