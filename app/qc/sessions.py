"""Annotation sessions: length against the policy limit, and agreement early vs late in a session."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from app.qc.canonical import CanonicalItems

_MICROS_PER_MINUTE = 60_000_000
_NEVER = np.iinfo(np.int64).max
_BEFORE_ALL = np.iinfo(np.int64).min

Micros = npt.NDArray[np.int64]


def _session_bounds(canon: CanonicalItems) -> tuple[Micros, Micros]:
    """Per session: earliest ``started_at`` and latest ``submitted_at`` (sentinels where none)."""
    n_sessions = int(canon.session.max()) + 1 if canon.size else 0
    start = np.full(n_sessions, _NEVER, dtype=np.int64)
    end = np.full(n_sessions, _BEFORE_ALL, dtype=np.int64)
    in_session = canon.session >= 0
    started = in_session & canon.started_valid
    submitted = in_session & canon.submitted_valid
    np.minimum.at(start, canon.session[started], canon.started_at[started])
    np.maximum.at(end, canon.session[submitted], canon.submitted_at[submitted])
    return start, end


def sessions_over_limit(canon: CanonicalItems, max_minutes: float) -> dict[str, Any]:
    """Sessions longer than the policy's ``max_session_minutes`` (fatigue).

    A session is one ``(annotator, session_id)``; its duration is ``max(submitted_at) -
    min(started_at)`` over its items, defined when both exist. ``{"count": sessions with duration >
    limit, "sessions": number of sessions, "max_minutes": longest duration or None}``.
    """
    start, end = _session_bounds(canon)
    timed = (start != _NEVER) & (end != _BEFORE_ALL)
    minutes = (end[timed] - start[timed]) / _MICROS_PER_MINUTE
    return {
        "count": int((minutes > max_minutes).sum()),
        "sessions": int(start.shape[0]),
        "max_minutes": float(minutes.max()) if minutes.size else None,
    }


def leave_one_out_agreement(canon: CanonicalItems, counts: npt.NDArray[np.int64]) -> npt.NDArray[np.int8]:
    """Per item: 1 if its label equals the strict majority of the *other* annotators of its pair, 0 if
    not, -1 if those others have no strict majority (none, or no label with more than half their votes).

    With ``v`` the pair's vote counts (``vote_counts``) minus the item's own vote, the others' majority
    is ``argmax v`` when ``2 max v > sum v``.
    """
    others = counts[canon.pair].copy()
    others[np.arange(canon.size), canon.label] -= 1
    majority = others.argmax(axis=1)
    strict = 2 * others.max(axis=1) > others.sum(axis=1)
    agrees = (majority == canon.label).astype(np.int8)
    return np.where(strict, agrees, np.int8(-1)).astype(np.int8)


def session_agreement(canon: CanonicalItems, counts: npt.NDArray[np.int64], max_minutes: float) -> dict[str, Any]:
    """Leave-one-out agreement early vs late in sessions (fatigue or drift within a sitting).

    For items in a session with ``submitted_at`` and a known session start (``min(started_at)``):
    ``elapsed = submitted_at - session start``; early when ``elapsed < max_minutes / 2``, else late.
    Each bucket's figure is the share of its items that agree with the others' strict majority
    (``leave_one_out_agreement``); items without such a majority are skipped and not counted in
    ``n_early`` / ``n_late``. ``None`` for a bucket without items.
    """
    start, _ = _session_bounds(canon)
    in_session = canon.session >= 0
    session_start = np.full(canon.size, _NEVER, dtype=np.int64)
    session_start[in_session] = start[canon.session[in_session]]
    timed = in_session & canon.submitted_valid & (session_start != _NEVER)
    elapsed_minutes = (canon.submitted_at - np.where(timed, session_start, 0)) / _MICROS_PER_MINUTE
    agrees = leave_one_out_agreement(canon, counts)
    scored = timed & (agrees >= 0)
    early = scored & (elapsed_minutes < max_minutes / 2)
    late = scored & ~early
    n_early, n_late = int(early.sum()), int(late.sum())
    return {
        "early": float(agrees[early].mean()) if n_early else None,
        "late": float(agrees[late].mean()) if n_late else None,
        "n_early": n_early,
        "n_late": n_late,
    }
