"""Drift against the project's earlier batches."""

from __future__ import annotations

from typing import Any

import pytest

from app.kinds.policy import DEFAULT_POLICY
from app.qc import compute_qc
from tests.qc.batches import items_table, random_rows


def test_drift_is_this_batch_minus_the_mean_of_history() -> None:
    history = [compute_qc(items_table(random_rows(seed)), DEFAULT_POLICY, policy_version=0) for seed in (1, 2)]
    qc = compute_qc(items_table(random_rows(3)), DEFAULT_POLICY, history=history, policy_version=0)

    def mean(values: list[float]) -> float:
        return sum(values) / len(values)

    drift = qc["drift"]
    assert drift["batches"] == 2
    assert drift["kappa_mean_delta"] == pytest.approx(
        qc["cohen_kappa"]["mean"] - mean([h["cohen_kappa"]["mean"] for h in history]), abs=1e-12
    )
    assert drift["alpha_delta"] == pytest.approx(
        qc["krippendorff_alpha"] - mean([h["krippendorff_alpha"] for h in history]), abs=1e-12
    )
    assert drift["tie_rate_delta"] == pytest.approx(qc["tie_rate"] - mean([h["tie_rate"] for h in history]), abs=1e-12)
    assert drift["position_share_first_delta"] == pytest.approx(
        qc["position_bias"]["share_first"] - mean([h["position_bias"]["share_first"] for h in history]),
        abs=1e-12,
    )


def test_drift_without_history_is_undefined() -> None:
    qc = compute_qc(items_table(random_rows(0)), DEFAULT_POLICY, policy_version=0)
    assert qc["drift"] == {
        "batches": 0,
        "kappa_mean_delta": None,
        "alpha_delta": None,
        "tie_rate_delta": None,
        "position_share_first_delta": None,
    }


def test_drift_skips_undefined_and_missing_history_values() -> None:
    history: list[dict[str, Any]] = [
        {
            "cohen_kappa": {"mean": None},
            "krippendorff_alpha": 0.5,
            "tie_rate": 0.1,
        },  # older shape: no position
        {"cohen_kappa": {"mean": 0.7}, "krippendorff_alpha": None, "tie_rate": 0.3, "position_bias": None},
    ]
    qc = compute_qc(items_table(random_rows(0)), DEFAULT_POLICY, history=history, policy_version=0)
    drift = qc["drift"]
    assert drift["batches"] == 2
    assert drift["kappa_mean_delta"] == pytest.approx(qc["cohen_kappa"]["mean"] - 0.7)
    assert drift["alpha_delta"] == pytest.approx(qc["krippendorff_alpha"] - 0.5)
    assert drift["tie_rate_delta"] == pytest.approx(qc["tie_rate"] - 0.2)
    assert drift["position_share_first_delta"] is None
