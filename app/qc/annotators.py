"""Per-annotator figures of one batch: agreement with the other annotators, gold accuracy, position bias
and session lengths, each computed the way the batch-wide figure is (``report.py``), restricted to one
annotator's items. Read-only: they are computed when a page asks and never stored in a record."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from app.qc.agreement import pairwise_cohen_kappa
from app.qc.binomial import binomial_two_sided_p
from app.qc.canonical import TIE, CanonicalItems
from app.qc.sessions import leave_one_out_agreement

_MICROS_PER_MINUTE = 60_000_000


def session_minutes(canon: CanonicalItems) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """(annotator, minutes) of every timed session.

    A session is one ``(annotator, session_id)`` (``canonicalise``); its length is ``max(submitted_at) -
    min(started_at)`` over its items, as in ``sessions.sessions_over_limit``. Sessions without both
    timestamps are left out.
    """
    in_session = canon.session >= 0
    if not in_session.any():
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
    n_sessions = int(canon.session.max()) + 1
    never, before_all = np.iinfo(np.int64).max, np.iinfo(np.int64).min
    start = np.full(n_sessions, never, dtype=np.int64)
    end = np.full(n_sessions, before_all, dtype=np.int64)
    owner = np.full(n_sessions, -1, dtype=np.int64)
    owner[canon.session[in_session]] = canon.annotator[in_session]
    started = in_session & canon.started_valid
    submitted = in_session & canon.submitted_valid
    np.minimum.at(start, canon.session[started], canon.started_at[started])
    np.maximum.at(end, canon.session[submitted], canon.submitted_at[submitted])
    timed = (start != never) & (end != before_all)
    return owner[timed], (end[timed] - start[timed]) / _MICROS_PER_MINUTE


def per_annotator(canon: CanonicalItems, counts: npt.NDArray[np.int64], max_minutes: float) -> list[dict[str, Any]]:
    """One row per annotator, sorted by name.

    - ``agreement``: share of the annotator's items whose label equals the strict majority of the *other*
      annotators of the pair (``leave_one_out_agreement``), over ``agreement_n`` items that have such a
      majority; ``kappa_mean``: mean Cohen's kappa with each co-annotator (``pairwise_cohen_kappa``).
    - ``gold_accuracy`` over ``gold_n`` gold items (``reference_labels.gold_accuracy``).
    - ``share_first`` and ``position_p`` (two-sided exact binomial test against 1/2) over ``position_n``
      decisive items with a known display order (``bias.position_bias``); ``tie_rate``.
    - ``sessions``, ``session_median`` and ``session_max`` in minutes, ``sessions_over`` the policy's
      ``max_session_minutes`` (``sessions.sessions_over_limit``).
    Undefined figures are ``None``.
    """
    agrees = leave_one_out_agreement(canon, counts)
    kappas: dict[str, list[float]] = {name: [] for name in canon.annotators}
    for pair in pairwise_cohen_kappa(canon)["pairs"]:
        if pair["kappa"] is not None:
            for name in pair["annotators"]:
                kappas[name].append(pair["kappa"])
    owners, minutes = session_minutes(canon)
    rows: list[dict[str, Any]] = []
    for index, name in enumerate(canon.annotators):
        mine = canon.annotator == index
        scored = mine & (agrees >= 0)
        gold = mine & (canon.gold >= 0)
        shown = mine & (canon.chose_shown_first >= 0)
        first = int(canon.chose_shown_first[shown].sum())
        n_shown = int(shown.sum())
        lengths = minutes[owners == index]
        rows.append(
            {
                "annotator": name,
                "items": int(mine.sum()),
                "agreement": float(agrees[scored].mean()) if scored.any() else None,
                "agreement_n": int(scored.sum()),
                "kappa_mean": float(np.mean(kappas[name])) if kappas[name] else None,
                "gold_accuracy": float((canon.label[gold] == canon.gold[gold]).mean()) if gold.any() else None,
                "gold_n": int(gold.sum()),
                "share_first": first / n_shown if n_shown else None,
                "position_p": binomial_two_sided_p(first, n_shown),
                "position_n": n_shown,
                "tie_rate": float((canon.label[mine] == TIE).mean()) if mine.any() else None,
                "sessions": int(lengths.size),
                "session_median": float(np.median(lengths)) if lengths.size else None,
                "session_max": float(lengths.max()) if lengths.size else None,
                "sessions_over": int((lengths > max_minutes).sum()),
            }
        )
    return rows
