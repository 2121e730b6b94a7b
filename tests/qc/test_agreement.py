"""Cohen's kappa, Krippendorff's alpha, split pairs and pair votes against the reference libraries."""

from __future__ import annotations

import json

import pytest

from app.kinds.policy import DEFAULT_POLICY
from app.qc import compute_qc, pair_votes
from tests.qc import reference
from tests.qc.batches import item, items_table, random_rows

SEEDS = [0, 1, 2, 3, 4, 5, 6, 7]


@pytest.mark.parametrize("seed", SEEDS)
def test_cohen_kappa_per_pair_equals_sklearn(seed: int) -> None:
    rows = random_rows(seed)
    qc = compute_qc(items_table(rows), DEFAULT_POLICY, policy_version=0)

    expected = reference.cohen_pairs(rows)
    actual = qc["cohen_kappa"]["pairs"]
    assert [p["annotators"] for p in actual] == [p["annotators"] for p in expected]
    assert [p["n"] for p in actual] == [p["n"] for p in expected]
    for got, want in zip(actual, expected, strict=True):
        reference.assert_close(got["kappa"], want["kappa"])
    defined = [p["kappa"] for p in expected if p["kappa"] is not None]
    reference.assert_close(qc["cohen_kappa"]["mean"], sum(defined) / len(defined))
    reference.assert_close(qc["cohen_kappa"]["min"], min(defined))


@pytest.mark.parametrize("seed", SEEDS)
def test_krippendorff_alpha_equals_reference_package(seed: int) -> None:
    rows = random_rows(seed)
    qc = compute_qc(items_table(rows), DEFAULT_POLICY, policy_version=0)
    reference.assert_close(qc["krippendorff_alpha"], reference.alpha(rows))


def test_swapping_the_slots_of_one_annotator_changes_no_agreement_figure() -> None:
    rows = random_rows(11)
    flip = {"a": "b", "b": "a", "tie": "tie", None: None}
    swapped = [
        {
            **r,
            "response_a": r["response_b"],
            "response_b": r["response_a"],
            "choice": flip[r["choice"]],
            "gold": flip[r.get("gold")],
        }
        if r["annotator"] == "ann-00"
        else r
        for r in rows
    ]
    before = compute_qc(items_table(rows), DEFAULT_POLICY, policy_version=0)
    after = compute_qc(items_table(swapped), DEFAULT_POLICY, policy_version=0)
    for key in ("cohen_kappa", "krippendorff_alpha", "gold_accuracy", "high_disagreement_rate"):
        assert after[key] == before[key]


@pytest.mark.filterwarnings("ignore::UserWarning:sklearn")
def test_kappa_is_none_when_both_raters_use_one_label_and_left_out_of_mean() -> None:
    rows = [
        item("p1", "u1", "a"),
        item("p2", "u1", "a"),
        item("p1", "u2", "a"),
        item("p2", "u2", "a"),
        item("p1", "u3", "b"),
        item("p2", "u3", "a"),
        item("p3", "u3", "a"),
    ]
    expected = reference.cohen_pairs(rows)
    qc = compute_qc(items_table(rows), DEFAULT_POLICY, policy_version=0)
    pairs = qc["cohen_kappa"]["pairs"]
    assert pairs[0] == {"annotators": ["u1", "u2"], "kappa": None, "n": 2}
    assert expected[0]["kappa"] is None
    for got, want in zip(pairs, expected, strict=True):
        reference.assert_close(got["kappa"], want["kappa"])
    assert qc["cohen_kappa"]["mean"] == pytest.approx(0.0)  # u1-u3 and u2-u3 both 0


def test_pairs_with_fewer_than_two_common_items_are_not_listed() -> None:
    rows = [item("p1", "u1", "a"), item("p1", "u2", "b"), item("p2", "u1", "a"), item("p3", "u2", "a")]
    qc = compute_qc(items_table(rows), DEFAULT_POLICY, policy_version=0)
    assert qc["cohen_kappa"] == {"mean": None, "min": None, "pairs": []}


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize(
    "rows",
    [
        [item("p1", "u1", "a"), item("p2", "u1", "b")],  # nobody rated a pair twice
        [item("p1", "u1", "a"), item("p1", "u2", "a"), item("p2", "u1", "a"), item("p2", "u2", "a")],
        [item("p1", "u1", "a"), item("p1", "u2", "a"), item("p2", "u1", "b")],  # variation in a singleton
    ],
)
def test_alpha_is_none_where_the_reference_is_undefined(rows: list[dict[str, str]]) -> None:
    qc = compute_qc(items_table(rows), DEFAULT_POLICY, policy_version=0)
    assert qc["krippendorff_alpha"] is None
    assert reference.alpha(rows) is None


@pytest.mark.parametrize("seed", SEEDS[:4])
def test_high_disagreement_rate_counts_pairs_inside_the_band(seed: int) -> None:
    rows = random_rows(seed)
    band = tuple(DEFAULT_POLICY["high_disagreement_band"])
    qc = compute_qc(items_table(rows), DEFAULT_POLICY, policy_version=0)
    count, eligible = reference.high_disagreement(rows, (band[0], band[1]))
    assert qc["high_disagreement_count"] == count
    assert qc["high_disagreement_rate"] == pytest.approx(count / eligible, abs=1e-12)


def test_high_disagreement_band_is_inclusive() -> None:
    # 2 of 5 first votes = 0.4 exactly, on the band's edge; 1 of 5 is outside.
    rows = [item("p1", f"u{i}", "a" if i < 2 else "b") for i in range(5)]
    rows += [item("p2", f"u{i}", "a" if i < 1 else "b") for i in range(5)]
    rows += [item("p3", "u0", "a"), item("p3", "u1", "tie")]  # one decisive vote: not eligible
    qc = compute_qc(items_table(rows), DEFAULT_POLICY, policy_version=0)
    assert qc["high_disagreement_count"] == 1
    assert qc["high_disagreement_rate"] == 0.5


def test_pair_votes_counts_canonical_votes_per_pair() -> None:
    rows = random_rows(3)
    table = pair_votes(items_table(rows))
    expected = reference.votes(rows)
    assert table.column("pair_id").to_pylist() == sorted(expected)
    for record in table.to_pylist():
        tally = expected[record["pair_id"]]
        assert (record["first"], record["second"], record["tie"]) == (
            tally["first"],
            tally["second"],
            tally["tie"],
        )
        assert record["first_response"] <= record["second_response"]
    texts = {r["pair_id"]: sorted([r["response_a"], r["response_b"]]) for r in rows}
    assert all([r["first_response"], r["second_response"]] == texts[r["pair_id"]] for r in table.to_pylist())


def test_output_has_exactly_the_api_keys_and_is_plain_json_without_nan() -> None:
    qc = compute_qc(items_table(random_rows(9, with_ai=True)), DEFAULT_POLICY, policy_version=3)
    assert set(qc) == {
        "cohen_kappa",
        "krippendorff_alpha",
        "gold_accuracy",
        "position_bias",
        "length_bias",
        "tie_rate",
        "high_disagreement_rate",
        "high_disagreement_count",
        "sessions_over_limit",
        "session_agreement",
        "drift",
        "ai_agreement",
        "ai_labelled",
        "ai_review",
        "gate",
        "gate_reasons",
        "policy_version",
        "counts",
    }
    assert json.loads(json.dumps(qc, allow_nan=False)) == qc


def test_a_repeated_pair_and_annotator_is_refused() -> None:
    rows = [item("p1", "u1", "a"), item("p1", "u2", "a"), item("p1", "u1", "b")]
    with pytest.raises(ValueError, match="unique"):
        compute_qc(items_table(rows), DEFAULT_POLICY, policy_version=0)


def test_a_null_pair_id_is_refused() -> None:
    with pytest.raises(ValueError, match="pair_id"):
        compute_qc(items_table([item(None, "u1", "a")]), DEFAULT_POLICY, policy_version=0)  # type: ignore[arg-type]
