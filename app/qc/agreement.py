"""Inter-annotator agreement: Cohen's kappa per annotator pair, Krippendorff's alpha, split pairs.

All three work on canonical labels (`canonical.py`), so two annotators who saw the responses in
swapped slots but preferred the same text agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from app.qc.canonical import FIRST, SECOND, CanonicalItems

Floats = npt.NDArray[np.float64]
Counts = npt.NDArray[np.int64]

_OFF_DIAGONAL = 1.0 - np.eye(3)


def kappa_from_confusion(confusion: Counts) -> Floats:
    """Cohen's kappa of each (..., 3, 3) confusion matrix; NaN where undefined.

    Cohen (1960), "A coefficient of agreement for nominal scales", in the disagreement form that
    scikit-learn's ``cohen_kappa_score`` uses: with ``C`` the confusion matrix of ``n`` ratings,
    ``E = outer(col_sums, row_sums) / n`` the counts expected by chance and ``W = 1 - I``,
    ``kappa = 1 - sum(W * C) / sum(W * E)``. Undefined (NaN) when ``n = 0`` or ``sum(W * E) = 0``
    (both raters used one and the same single label), where scikit-learn returns NaN too.
    """
    c = confusion.astype(np.float64)
    n = c.sum(axis=(-2, -1))
    rows = c.sum(axis=-1)
    cols = c.sum(axis=-2)
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = cols[..., :, None] * rows[..., None, :] / n[..., None, None]
        observed_disagreement = (_OFF_DIAGONAL * c).sum(axis=(-2, -1))
        expected_disagreement = (_OFF_DIAGONAL * expected).sum(axis=(-2, -1))
        kappa = 1.0 - observed_disagreement / expected_disagreement
    return np.where((n > 0) & (expected_disagreement > 0), kappa, np.nan)


def _co_rated(canon: CanonicalItems) -> tuple[Counts, Counts, Counts, Counts]:
    """Every pair of items on one pair_id as (annotator lo, annotator hi, label lo, label hi).

    Items are sorted by pair; the item ``d`` places further on is paired when it is on the same
    pair_id, for ``d = 1 .. largest ratings per pair - 1`` (a loop bounded by the annotator count).
    """
    order = np.argsort(canon.pair, kind="stable")
    pair = canon.pair[order]
    annotator = canon.annotator[order]
    label = canon.label[order].astype(np.int64)
    widest = int(np.bincount(pair).max()) if pair.size else 0
    parts: list[tuple[Counts, Counts, Counts, Counts]] = []
    for d in range(1, widest):
        same = pair[:-d] == pair[d:]
        a1, a2 = annotator[:-d][same], annotator[d:][same]
        l1, l2 = label[:-d][same], label[d:][same]
        if (a1 == a2).any():
            raise ValueError("an annotator rated the same pair_id twice: (pair_id, annotator) must be unique")
        flip = a1 > a2
        parts.append((np.where(flip, a2, a1), np.where(flip, a1, a2), np.where(flip, l2, l1), np.where(flip, l1, l2)))
    if not parts:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty, empty
    lo_a, hi_a, lo_l, hi_l = (np.concatenate(column) for column in zip(*parts, strict=True))
    return lo_a, hi_a, lo_l, hi_l


def pairwise_cohen_kappa(canon: CanonicalItems, *, min_overlap: int = 2) -> dict[str, Any]:
    """Cohen's kappa for every annotator pair that rated at least `min_overlap` common pair_ids.

    Each annotator pair's 3x3 confusion matrix (first/second/tie) comes from one ``bincount`` over
    ``9 * pair_index + 3 * label_lo + label_hi``; kappa per matrix as in ``kappa_from_confusion``.
    Returns ``{"mean", "min", "pairs": [{"annotators": [a1, a2], "kappa", "n"}]}`` with pairs sorted by
    annotator names; undefined kappas are ``None`` and left out of mean and min.
    """
    lo_a, hi_a, lo_l, hi_l = _co_rated(canon)
    n_annotators = len(canon.annotators)
    keys, which = np.unique(lo_a * n_annotators + hi_a, return_inverse=True)
    which = which.reshape(-1)
    confusion = np.bincount(which * 9 + lo_l * 3 + hi_l, minlength=keys.shape[0] * 9).reshape(-1, 3, 3)
    overlap = confusion.sum(axis=(1, 2))
    kappas = kappa_from_confusion(confusion)
    pairs: list[dict[str, Any]] = []
    defined: list[float] = []
    for key, kappa, n in zip(keys.tolist(), kappas.tolist(), overlap.tolist(), strict=True):
        if n < min_overlap:
            continue
        value = None if np.isnan(kappa) else float(kappa)
        if value is not None:
            defined.append(value)
        names = [canon.annotators[key // n_annotators], canon.annotators[key % n_annotators]]
        pairs.append({"annotators": names, "kappa": value, "n": int(n)})
    return {
        "mean": float(np.mean(defined)) if defined else None,
        "min": float(min(defined)) if defined else None,
        "pairs": pairs,
    }


def krippendorff_alpha_nominal(counts: Counts) -> float | None:
    """Krippendorff's alpha, nominal, from a (units, values) matrix of how many coders chose each value.

    Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C (nominal data, any
    number of observers, missing values). Only units with ``m_u >= 2`` values are pairable. Coincidences
    ``o_ck = sum_u (n_uc n_uk - [c = k] n_uc) / (m_u - 1)``, ``n_c = sum_k o_ck``, ``n = sum_c n_c``,
    expected ``e_ck = (n_c n_k - [c = k] n_c) / (n - 1)``, and
    ``alpha = 1 - sum_{c != k} o_ck / sum_{c != k} e_ck``. ``None`` when no unit is pairable or the
    pairable values show no variation (the expected disagreement is 0).
    """
    m = counts.sum(axis=1)
    pairable = m >= 2
    if not pairable.any():
        return None
    values = counts[pairable].astype(np.float64)
    weighted = values / (m[pairable] - 1.0)[:, None]
    coincidences = weighted.T @ values - np.diag(weighted.sum(axis=0))
    n_c = coincidences.sum(axis=0)
    n = n_c.sum()
    expected = (np.outer(n_c, n_c) - np.diag(n_c)) / (n - 1.0)
    off = 1.0 - np.eye(counts.shape[1])
    expected_disagreement = float((expected * off).sum())
    if expected_disagreement <= 0.0:
        return None
    return 1.0 - float((coincidences * off).sum()) / expected_disagreement


def high_disagreement(counts: Counts, band: Sequence[float]) -> dict[str, Any]:
    """Pairs split near 50/50 between the two responses.

    Over pairs with ``first + second >= 2`` (ties left out), a pair is high-disagreement when
    ``first / (first + second)`` lies in ``[band[0], band[1]]`` (inclusive). Returns
    ``{"rate": count / eligible or None, "count", "eligible"}``.
    """
    decided = counts[:, FIRST] + counts[:, SECOND]
    eligible = decided >= 2
    share = counts[eligible, FIRST] / decided[eligible]
    low, high = float(band[0]), float(band[1])
    count = int(((share >= low) & (share <= high)).sum())
    n = int(eligible.sum())
    return {"rate": count / n if n else None, "count": count, "eligible": n}
