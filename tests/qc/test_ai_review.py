"""QC of AI labels: an AI judge's own items are no agreement, a review's coverage of the sample, and the
gate of an AI-labelled batch, which never reads AI labels as human agreement."""

from __future__ import annotations

import pytest
from sklearn.metrics import cohen_kappa_score

from app.kinds.policy import DEFAULT_POLICY
from app.qc import compute_qc
from app.qc.gate import AI_LABELLED_REASON
from app.qc.reference_labels import ReviewedSample
from tests.qc.batches import item, items_table

AI = ("a", "b", "a", "tie", "b", "a")
HUMAN = ("a", "b", "b", "tie", "a", "a")


def test_ai_agreement_counts_only_human_items() -> None:
    judge = [item(f"p{i}", "ai:judge@1", choice, ai_choice=choice) for i, choice in enumerate(AI)]
    humans = [item(f"p{i}", "u1", said, ai_choice=ai) for i, (ai, said) in enumerate(zip(AI, HUMAN, strict=True))]
    qc = compute_qc(items_table(judge + humans), DEFAULT_POLICY, policy_version=0)
    assert qc["ai_agreement"]["n"] == len(HUMAN)
    assert qc["ai_agreement"]["agreement"] == pytest.approx(4 / 6)
    assert qc["ai_agreement"]["kappa"] == pytest.approx(cohen_kappa_score(AI, HUMAN))
    only_judge = compute_qc(items_table(judge), DEFAULT_POLICY, policy_version=0)
    assert only_judge["ai_agreement"] is None


def test_review_coverage_is_reviewed_over_sampled() -> None:
    rows = [item(f"p{i}", "u1", "a", ai_choice="a") for i in range(3)]
    rows += [item("p9", "u1", "a")]  # no AI label beside it: not a review of the pair
    sample = ReviewedSample(pair_ids=("p0", "p1", "p4", "p5", "p9"), pairs=40)
    qc = compute_qc(items_table(rows), DEFAULT_POLICY, policy_version=0, reviewed=sample)
    assert qc["ai_review"] == {"sampled": 5, "reviewed": 2, "coverage": 0.4}
    whole = ReviewedSample(pair_ids=None, pairs=40)
    qc = compute_qc(items_table(rows), DEFAULT_POLICY, policy_version=0, reviewed=whole)
    assert qc["ai_review"] == {"sampled": 40, "reviewed": 3, "coverage": 3 / 40}
    assert compute_qc(items_table(rows), DEFAULT_POLICY, policy_version=0)["ai_review"] is None


def test_agreeing_ai_judges_do_not_pass_the_gate_as_human_agreement() -> None:
    choices = ["a", "b"] * 10
    rows = [
        item(f"p{i}", judge, choice, ai_choice=choice)
        for i, choice in enumerate(choices)
        for judge in ("ai:judge@1", "ai:judge@2")
    ]
    as_humans = compute_qc(items_table(rows), DEFAULT_POLICY, policy_version=0)
    assert as_humans["gate"] == "pass" and as_humans["cohen_kappa"]["mean"] == 1.0
    qc = compute_qc(items_table(rows), DEFAULT_POLICY, policy_version=0, ai_labelled=True)
    assert qc["ai_labelled"] is True
    assert (qc["gate"], qc["gate_reasons"]) == ("warn", [AI_LABELLED_REASON])
