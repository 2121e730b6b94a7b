"""Real human-preference data (shared/data): figures equal the reference libraries; gates as expected."""

from __future__ import annotations

from typing import Any

import pytest

from app.kinds.policy import DEFAULT_POLICY
from app.qc import compute_qc
from tests.qc import reference
from tests.qc.batches import items_table, pandalm_rows, vicuna_rows
from tests.support.services import shared_data

needs_data = pytest.mark.usefixtures("real_data")


@pytest.fixture
def real_data() -> None:
    shared_data("pandalm/testset-v1.json")
    shared_data("prd-vicuna80/vicuna80")


def _assert_agreement_matches_references(rows: list[dict[str, Any]], qc: dict[str, Any]) -> None:
    expected = reference.cohen_pairs(rows)
    assert [(p["annotators"], p["n"]) for p in qc["cohen_kappa"]["pairs"]] == [
        (p["annotators"], p["n"]) for p in expected
    ]
    for got, want in zip(qc["cohen_kappa"]["pairs"], expected, strict=True):
        reference.assert_close(got["kappa"], want["kappa"])
    reference.assert_close(qc["krippendorff_alpha"], reference.alpha(rows))
    k, n = reference.length(rows)
    assert qc["length_bias"] == {"share_longer": pytest.approx(k / n, abs=1e-12), "n": n}


@needs_data
def test_pandalm_matches_references_and_passes_the_default_policy() -> None:
    rows = pandalm_rows()
    qc = compute_qc(items_table(rows), DEFAULT_POLICY, policy_version=0)

    assert qc["counts"] == {"items": 2997, "pairs": 999, "annotators": 3}
    _assert_agreement_matches_references(rows, qc)
    assert qc["cohen_kappa"]["min"] > 0.8  # raw agreement 0.91-0.93 (data README)
    assert qc["position_bias"] == {"share_first": None, "p_value": None, "n": 0}  # display order unknown
    assert qc["gate"] == "pass"
    assert qc["gate_reasons"] == []


@needs_data
def test_prd_vicuna80_matches_references_and_does_not_pass() -> None:
    rows = vicuna_rows()
    qc = compute_qc(items_table(rows), DEFAULT_POLICY, policy_version=0)

    assert qc["counts"]["pairs"] == 800
    _assert_agreement_matches_references(rows, qc)
    # Ratings from A-vs-B and B-vs-A files land in both slot orders, so canonical orientation matters.
    assert {r["response_a"] > r["response_b"] for r in rows} == {True, False}
    assert qc["gate"] in {"block", "warn"}
    assert qc["gate"] == "block"  # raw agreement about 0.5: kappa about 0.2, below the floor 0.4
    assert qc["gate_reasons"]
