"""Gate rules: agreement against the policy's floor and target, gold share, sessions."""

from __future__ import annotations

from typing import Any

import pytest

from app.kinds.policy import DEFAULT_POLICY
from app.qc import compute_qc
from app.qc.gate import gate
from tests.qc.batches import item, items_table


def qc_figures(
    kappa: float | None = 0.8,
    alpha: float | None = 0.8,
    gold_n: int = 0,
    gold_share: float = 0.0,
    long_sessions: int = 0,
) -> dict[str, Any]:
    return {
        "cohen_kappa": {"mean": kappa, "min": kappa, "pairs": []},
        "krippendorff_alpha": alpha,
        "gold_accuracy": {"overall": None, "per_annotator": {}, "n": gold_n, "share": gold_share},
        "sessions_over_limit": {"count": long_sessions, "sessions": 3, "max_minutes": 10.0},
    }


@pytest.mark.parametrize(
    ("kappa", "alpha", "expected"),
    [
        (0.8, 0.1, "pass"),  # kappa wins over alpha when defined
        (0.6, None, "pass"),  # the target itself passes
        (0.59, 0.9, "warn"),
        (0.4, None, "warn"),  # the floor itself is not below the floor
        (0.39, 0.9, "block"),
        (None, 0.7, "pass"),  # alpha when kappa is undefined
        (None, 0.5, "warn"),
        (None, 0.2, "block"),
        (None, None, "warn"),  # no agreement figure at all
    ],
)
def test_agreement_against_floor_and_target(kappa: float | None, alpha: float | None, expected: str) -> None:
    level, reasons = gate(qc_figures(kappa, alpha), DEFAULT_POLICY)
    assert level == expected
    assert bool(reasons) == (expected != "pass")


def test_gold_share_below_minimum_warns_but_never_blocks() -> None:
    assert gate(qc_figures(gold_n=3, gold_share=0.01), DEFAULT_POLICY)[0] == "warn"
    assert gate(qc_figures(gold_n=30, gold_share=0.05), DEFAULT_POLICY) == ("pass", [])
    level, reasons = gate(qc_figures(kappa=0.1, gold_n=3, gold_share=0.01), DEFAULT_POLICY)
    assert level == "block"
    assert len(reasons) == 2


def test_a_batch_without_gold_items_is_not_judged_on_gold_share() -> None:
    assert gate(qc_figures(gold_n=0, gold_share=0.0), DEFAULT_POLICY) == ("pass", [])


def test_sessions_over_the_limit_warn() -> None:
    level, reasons = gate(qc_figures(long_sessions=2), DEFAULT_POLICY)
    assert level == "warn"
    assert reasons == ["2 session(s) longer than 90 minutes"]


def test_thresholds_come_from_the_policy() -> None:
    strict = {**DEFAULT_POLICY, "kappa_floor": 0.85, "kappa_target": 0.9}
    assert gate(qc_figures(0.8), strict)[0] == "block"


def test_single_annotator_batch_warns_end_to_end() -> None:
    rows = [item(f"p{i}", "solo", "a" if i % 2 else "b") for i in range(10)]
    qc = compute_qc(items_table(rows), DEFAULT_POLICY, policy_version=4)
    assert qc["gate"] == "warn"
    assert qc["krippendorff_alpha"] is None
    assert qc["cohen_kappa"] == {"mean": None, "min": None, "pairs": []}
    assert qc["policy_version"] == 4
    assert qc["counts"] == {"items": 10, "pairs": 10, "annotators": 1}
