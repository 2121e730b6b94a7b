"""``compute_qc``: the ``derived.qc`` figures of an annotation batch (API.md), in one pass."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

from app.qc.agreement import high_disagreement, krippendorff_alpha_nominal, pairwise_cohen_kappa
from app.qc.bias import length_bias, position_bias, tie_rate
from app.qc.canonical import FEATURE_COLUMNS, canonicalise, vote_counts
from app.qc.drift import drift
from app.qc.gate import gate
from app.qc.reference_labels import ReviewedSample, ai_agreement, gold_accuracy, review_coverage
from app.qc.sessions import session_agreement, sessions_over_limit

ITEM_COLUMNS = (
    "pair_id",
    "annotator",
    "choice",
    "shown_first",
    "response_a",
    "response_b",
    "session_id",
    "started_at",
    "submitted_at",
    "gold",
    "ai_choice",
)


def compute_qc(
    items: pa.Table,
    policy: Mapping[str, Any],
    *,
    history: Sequence[Mapping[str, Any]] = (),
    policy_version: int,
    ai_labelled: bool = False,
    reviewed: ReviewedSample | None = None,
) -> dict[str, Any]:
    """Quality figures and gate of one annotation batch, as a JSON-ready dict (no NaN, no numpy types).

    `items` holds one row per (pair_id, annotator) with the columns of ``ITEM_COLUMNS`` (the two
    response texts may be replaced by the ``text_features`` columns ``swapped``, ``len_a``,
    ``len_b``); every figure is computed in canonical orientation (``canonical.py``). `policy`
    supplies ``kappa_floor``,
    ``kappa_target``, ``gold_share_min``, ``max_session_minutes`` and ``high_disagreement_band``;
    `history` holds earlier batches' qc dicts, oldest first, for ``drift``. Keys: ``cohen_kappa``,
    ``krippendorff_alpha``, ``gold_accuracy``, ``position_bias``, ``length_bias``, ``tie_rate``,
    ``high_disagreement_rate``, ``high_disagreement_count``, ``sessions_over_limit``,
    ``session_agreement``, ``drift``, ``ai_agreement``, ``ai_labelled``, ``ai_review``, ``gate``,
    ``gate_reasons``, ``policy_version``, ``counts``. Undefined figures are ``None``.

    `ai_labelled` marks a batch whose every label is an AI judge's: its figures are computed the same
    way (position and length bias describe the judge) and the gate says it holds no human agreement.
    `reviewed` is given for a batch that reviews an AI-labelled one: what that batch sampled for
    review, whose coverage ``ai_review`` gives (``review_coverage``; ``None`` for any other batch).
    """
    texts_or_features = {"response_a", "response_b"} if "swapped" not in items.column_names else set(FEATURE_COLUMNS)
    needed = [name for name in ITEM_COLUMNS if name not in {"response_a", "response_b"}] + sorted(texts_or_features)
    missing = [name for name in needed if name not in items.column_names]
    if missing:
        raise ValueError(f"items table lacks column(s) {missing}")
    canon = canonicalise(items)
    counts = vote_counts(canon)
    max_minutes = float(policy["max_session_minutes"])
    split = high_disagreement(counts, policy["high_disagreement_band"])
    qc: dict[str, Any] = {
        "cohen_kappa": pairwise_cohen_kappa(canon),
        "krippendorff_alpha": krippendorff_alpha_nominal(counts),
        "gold_accuracy": gold_accuracy(canon),
        "position_bias": position_bias(canon),
        "length_bias": length_bias(canon),
        "tie_rate": tie_rate(canon),
        "high_disagreement_rate": split["rate"],
        "high_disagreement_count": split["count"],
        "sessions_over_limit": sessions_over_limit(canon, max_minutes),
        "session_agreement": session_agreement(canon, counts, max_minutes),
        "ai_agreement": ai_agreement(canon),
        "ai_labelled": ai_labelled,
        "ai_review": None if reviewed is None else review_coverage(canon, reviewed),
        "policy_version": int(policy_version),
        "counts": {"items": canon.size, "pairs": len(canon.pair_ids), "annotators": len(canon.annotators)},
    }
    qc["drift"] = drift(qc, history)
    qc["gate"], qc["gate_reasons"] = gate(qc, policy)
    return qc
