"""Position bias (with its exact binomial p-value), length bias and tie rate."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest

from app.kinds.policy import DEFAULT_POLICY
from app.qc import compute_qc
from app.qc.binomial import binomial_two_sided_p
from tests.qc import reference
from tests.qc.batches import item, items_table, random_rows


@pytest.mark.parametrize("n", [1, 2, 3, 7, 10, 11, 50, 101, 1000])
def test_binomial_p_value_equals_scipy_for_every_k(n: int) -> None:
    for k in range(n + 1):
        expected = binomtest(k, n, 0.5).pvalue
        assert abs(binomial_two_sided_p(k, n) - expected) <= 1e-9, (k, n)


@pytest.mark.parametrize("n", [9_999, 100_000, 1_000_001])
def test_binomial_p_value_equals_scipy_for_large_n(n: int) -> None:
    rng = np.random.default_rng(n)
    near = n // 2 + np.arange(-3, 4) * int(np.sqrt(n))
    for k in [0, 1, n - 1, n, n // 2, *near.tolist(), *rng.integers(0, n + 1, 5).tolist()]:
        expected = binomtest(int(k), n, 0.5).pvalue
        assert abs(binomial_two_sided_p(int(k), n) - expected) <= 1e-9, (k, n)


def test_binomial_p_value_is_none_without_trials() -> None:
    assert binomial_two_sided_p(0, 0) is None


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_position_and_length_bias_and_tie_rate_match_item_by_item_counts(seed: int) -> None:
    rows = random_rows(seed)
    qc = compute_qc(items_table(rows), DEFAULT_POLICY, policy_version=0)

    k, n = reference.position(rows)
    assert qc["position_bias"]["n"] == n
    assert qc["position_bias"]["share_first"] == pytest.approx(k / n, abs=1e-12)
    reference.assert_close(qc["position_bias"]["p_value"], binomtest(k, n, 0.5).pvalue)
    k, n = reference.length(rows)
    assert qc["length_bias"] == {"share_longer": pytest.approx(k / n, abs=1e-12), "n": n}
    ties = sum(r["choice"] == "tie" for r in rows)
    assert qc["tie_rate"] == pytest.approx(ties / len(rows), abs=1e-12)


def test_position_bias_counts_the_response_displayed_first_not_slot_a() -> None:
    rows = [
        item("p1", "u1", "a", shown_first="a"),
        item("p2", "u1", "b", shown_first="b"),
        item("p3", "u1", "b", shown_first="a"),
        item("p4", "u1", "tie", shown_first="a"),  # ties do not count
        item("p5", "u1", "a"),  # unknown display order does not count
    ]
    qc = compute_qc(items_table(rows), DEFAULT_POLICY, policy_version=0)
    assert qc["position_bias"]["n"] == 3
    assert qc["position_bias"]["share_first"] == pytest.approx(2 / 3)
    assert qc["position_bias"]["p_value"] == pytest.approx(binomtest(2, 3, 0.5).pvalue, abs=1e-12)


def test_length_bias_skips_ties_and_equal_lengths() -> None:
    rows = [
        item("p1", "u1", "b"),  # "yy" is longer
        item("p2", "u1", "a"),
        item("p3", "u1", "a", response_a="xx", response_b="yy"),  # equal length
        item("p4", "u1", "tie"),
    ]
    qc = compute_qc(items_table(rows), DEFAULT_POLICY, policy_version=0)
    assert qc["length_bias"] == {"share_longer": 0.5, "n": 2}
    assert qc["tie_rate"] == 0.25


def test_length_is_counted_in_characters_not_bytes() -> None:
    rows = [item("p1", "u1", "a", response_a="ééé", response_b="abcd")]  # 6 bytes but 3 characters
    qc = compute_qc(items_table(rows), DEFAULT_POLICY, policy_version=0)
    assert qc["length_bias"] == {"share_longer": 0.0, "n": 1}


def test_empty_batch_gives_undefined_figures_and_a_warning() -> None:
    qc = compute_qc(items_table([]), DEFAULT_POLICY, policy_version=0)
    assert qc["counts"] == {"items": 0, "pairs": 0, "annotators": 0}
    assert qc["tie_rate"] is None
    assert qc["krippendorff_alpha"] is None
    assert qc["position_bias"] == {"share_first": None, "p_value": None, "n": 0}
    assert qc["gate"] == "warn"
