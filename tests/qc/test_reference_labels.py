"""Gold accuracy and agreement with AI suggestions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from app.kinds.policy import DEFAULT_POLICY
from app.qc import compute_qc
from tests.qc import reference
from tests.qc.batches import item, items_table, random_rows


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_gold_accuracy_matches_item_by_item_counts(seed: int) -> None:
    rows = random_rows(seed)
    qc = compute_qc(items_table(rows), DEFAULT_POLICY, policy_version=0)
    expected = reference.gold(rows)
    got = qc["gold_accuracy"]
    assert (got["n"], got["share"]) == (expected["n"], pytest.approx(expected["share"], abs=1e-12))
    assert got["overall"] == pytest.approx(expected["overall"], abs=1e-12)
    assert got["per_annotator"] == pytest.approx(expected["per_annotator"], abs=1e-12)
    assert qc["gold_accuracy"]["n"] > 0


def test_gold_is_read_in_the_items_own_slots() -> None:
    # The same pair seen swapped: both annotators chose "x"; gold says "x" in each item's own terms.
    rows = [
        item("p1", "u1", "a", response_a="x", response_b="yy", gold="a"),
        item("p1", "u2", "b", response_a="yy", response_b="x", gold="b"),
        item("p2", "u2", "a", gold="b"),
    ]
    qc = compute_qc(items_table(rows), DEFAULT_POLICY, policy_version=0)
    assert qc["gold_accuracy"] == {
        "overall": 2 / 3,
        "per_annotator": {"u1": 1.0, "u2": 0.5},
        "n": 3,
        "share": 1.0,
    }


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ai_agreement_matches_sklearn(seed: int) -> None:
    rows = random_rows(seed, with_ai=True)
    qc = compute_qc(items_table(rows), DEFAULT_POLICY, policy_version=0)
    assisted = [r for r in rows if r.get("ai_choice") is not None]
    human = [reference.canonical(r) for r in assisted]
    ai = [reference.canonical(r, "ai_choice") for r in assisted]
    assert qc["ai_agreement"]["n"] == len(assisted)
    assert qc["ai_agreement"]["agreement"] == pytest.approx(
        np.mean([h == a for h, a in zip(human, ai, strict=True)]), abs=1e-12
    )
    reference.assert_close(qc["ai_agreement"]["kappa"], float(cohen_kappa_score(ai, human)))


@pytest.mark.filterwarnings("ignore::UserWarning:sklearn")
def test_ai_agreement_is_none_without_suggestions_and_kappa_none_when_undefined() -> None:
    assert compute_qc(items_table(random_rows(0)), DEFAULT_POLICY, policy_version=0)["ai_agreement"] is None
    rows = [item("p1", "u1", "a", ai_choice="a"), item("p2", "u1", "a", ai_choice="a")]
    assert math.isnan(cohen_kappa_score(["first", "first"], ["first", "first"]))
    qc = compute_qc(items_table(rows), DEFAULT_POLICY, policy_version=0)
    assert qc["ai_agreement"] == {"n": 2, "agreement": 1.0, "kappa": None}


def test_values_outside_the_choice_domain_are_refused() -> None:
    with pytest.raises(ValueError, match="choice"):
        compute_qc(items_table([item("p1", "u1", "A")]), DEFAULT_POLICY, policy_version=0)
    with pytest.raises(ValueError, match="gold"):
        compute_qc(items_table([item("p1", "u1", "a", gold="left")]), DEFAULT_POLICY, policy_version=0)
