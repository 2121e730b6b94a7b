"""Systematic biases of a batch: display position, response length, ties."""

from __future__ import annotations

from typing import Any

import numpy as np

from app.qc.binomial import binomial_two_sided_p
from app.qc.canonical import TIE, CanonicalItems


def position_bias(canon: CanonicalItems) -> dict[str, Any]:
    """Share of decisive votes for the response displayed first, with an exact binomial p-value.

    Over non-tie items with a known ``shown_first``: ``k`` = votes for the response shown first,
    ``share_first = k / n`` and ``p_value`` = two-sided exact binomial test of ``k`` in ``n`` against
    1/2 (``binomial_two_sided_p``), the usual check for primacy effects in pairwise judgements.
    ``{"share_first", "p_value", "n"}``; both figures ``None`` when ``n = 0``.
    """
    known = canon.chose_shown_first >= 0
    n = int(known.sum())
    k = int(canon.chose_shown_first[known].sum())
    return {"share_first": k / n if n else None, "p_value": binomial_two_sided_p(k, n), "n": n}


def length_bias(canon: CanonicalItems) -> dict[str, Any]:
    """Share of decisive votes for the longer response (verbosity bias).

    Over non-tie items whose responses differ in length (Unicode code points, ``utf8_length``):
    ``share_longer = #{chose the longer} / n``; ``{"share_longer", "n"}``, ``None`` when ``n = 0``.
    """
    known = canon.chose_longer >= 0
    n = int(known.sum())
    longer = int(canon.chose_longer[known].sum())
    return {"share_longer": longer / n if n else None, "n": n}


def tie_rate(canon: CanonicalItems) -> float | None:
    """``#{choice = tie} / #items``; ``None`` for an empty batch."""
    return float(np.mean(canon.label == TIE)) if canon.size else None
