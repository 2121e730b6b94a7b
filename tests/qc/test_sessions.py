"""Sessions over the policy limit, and agreement early vs late in a session."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import timedelta
from typing import Any

import pytest

from app.kinds.policy import DEFAULT_POLICY
from app.qc import compute_qc
from tests.qc import reference
from tests.qc.batches import T0, item, items_table, random_rows


def at(minutes: float) -> Any:
    return T0 + timedelta(minutes=minutes)


def _reference(rows: list[dict[str, Any]], limit: float) -> dict[str, Any]:
    start: dict[tuple[str, str], Any] = {}
    end: dict[tuple[str, str], Any] = {}
    for r in rows:
        if r.get("session_id") is None:
            continue
        key = (r["annotator"], r["session_id"])
        start.setdefault(key, None)
        end.setdefault(key, None)
        if r.get("started_at") is not None:
            start[key] = r["started_at"] if start[key] is None else min(start[key], r["started_at"])
        if r.get("submitted_at") is not None:
            end[key] = r["submitted_at"] if end[key] is None else max(end[key], r["submitted_at"])
    minutes = [(end[k] - start[k]).total_seconds() / 60 for k in start if start[k] is not None and end[k] is not None]
    labels: dict[str, list[str]] = defaultdict(list)
    for r in rows:
        labels[r["pair_id"]].append(str(reference.canonical(r)))
    buckets: dict[str, list[bool]] = {"early": [], "late": []}
    for r in rows:
        key = (r.get("annotator"), r.get("session_id"))
        if r.get("session_id") is None or r.get("submitted_at") is None or start[key] is None:
            continue
        others = Counter(labels[r["pair_id"]])
        others[str(reference.canonical(r))] -= 1
        label, votes = max(others.items(), key=lambda kv: kv[1])
        if 2 * votes <= sum(others.values()):
            continue
        elapsed = (r["submitted_at"] - start[key]).total_seconds() / 60
        buckets["early" if elapsed < limit / 2 else "late"].append(label == reference.canonical(r))
    return {
        "sessions_over_limit": {
            "count": sum(m > limit for m in minutes),
            "sessions": len(start),
            "max_minutes": max(minutes) if minutes else None,
        },
        "session_agreement": {
            "early": sum(buckets["early"]) / len(buckets["early"]) if buckets["early"] else None,
            "late": sum(buckets["late"]) / len(buckets["late"]) if buckets["late"] else None,
            "n_early": len(buckets["early"]),
            "n_late": len(buckets["late"]),
        },
    }


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("limit", [30.0, 90.0, 600.0])
def test_session_figures_match_an_item_by_item_reference(seed: int, limit: float) -> None:
    rows = random_rows(seed)
    qc = compute_qc(items_table(rows), {**DEFAULT_POLICY, "max_session_minutes": limit}, policy_version=0)
    expected = _reference(rows, limit)
    assert qc["sessions_over_limit"] == pytest.approx(expected["sessions_over_limit"], abs=1e-9)
    assert qc["session_agreement"] == pytest.approx(expected["session_agreement"], abs=1e-9)


def test_session_length_is_last_submit_minus_first_start_per_annotator_and_session() -> None:
    rows = [
        item("p1", "u1", "a", session_id="s1", started_at=at(0), submitted_at=at(2)),
        item("p2", "u1", "a", session_id="s1", started_at=at(50), submitted_at=at(100)),
        # The same session id for another annotator is another session.
        item("p1", "u2", "a", session_id="s1", started_at=at(60), submitted_at=at(70)),
        item("p2", "u2", "a", session_id="s2", started_at=None, submitted_at=at(70)),  # no start: untimed
        item("p3", "u2", "a"),
    ]
    qc = compute_qc(items_table(rows), DEFAULT_POLICY, policy_version=0)
    assert qc["sessions_over_limit"] == {"count": 1, "sessions": 3, "max_minutes": 100.0}
    assert qc["gate"] == "warn"
    assert "1 session(s) longer than 90 minutes" in qc["gate_reasons"]


def test_early_and_late_agreement_use_the_others_strict_majority() -> None:
    session = {"session_id": "s1", "started_at": at(0)}
    rows = [
        # p1: u1 early, agrees with u2+u3 (a, a).
        item("p1", "u1", "a", **session, submitted_at=at(10)),
        item("p1", "u2", "a"),
        item("p1", "u3", "a"),
        # p2: u1 late (elapsed 45 = limit / 2 counts as late), disagrees with u2+u3.
        item("p2", "u1", "b", **session, submitted_at=at(45)),
        item("p2", "u2", "a"),
        item("p2", "u3", "a"),
        # p3: others split a / tie: no strict majority, skipped.
        item("p3", "u1", "a", **session, submitted_at=at(20)),
        item("p3", "u2", "a"),
        item("p3", "u3", "tie"),
    ]
    qc = compute_qc(items_table(rows), DEFAULT_POLICY, policy_version=0)
    assert qc["session_agreement"] == {"early": 1.0, "late": 0.0, "n_early": 1, "n_late": 1}


def test_no_sessions_gives_empty_figures() -> None:
    qc = compute_qc(items_table([item("p1", "u1", "a"), item("p1", "u2", "b")]), DEFAULT_POLICY, policy_version=0)
    assert qc["sessions_over_limit"] == {"count": 0, "sessions": 0, "max_minutes": None}
    assert qc["session_agreement"] == {"early": None, "late": None, "n_early": 0, "n_late": 0}
