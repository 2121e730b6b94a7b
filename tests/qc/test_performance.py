"""QC of a large batch completes (vectorised: no Python loop per item or per pair)."""

from __future__ import annotations

from app.kinds.policy import DEFAULT_POLICY
from app.qc import compute_qc, pair_votes
from tests.qc.batches import large_table


def test_one_million_items_complete() -> None:
    table = large_table(n_pairs=200_000, n_annotators=5)
    qc = compute_qc(table, DEFAULT_POLICY, policy_version=0)

    assert qc["counts"] == {"items": 1_000_000, "pairs": 200_000, "annotators": 5}
    assert len(qc["cohen_kappa"]["pairs"]) == 10
    assert all(p["n"] == 200_000 for p in qc["cohen_kappa"]["pairs"])
    assert 0.4 < qc["krippendorff_alpha"] < 0.8  # 80% of votes follow one truth per pair
    assert qc["sessions_over_limit"]["sessions"] == 35
    votes = pair_votes(table)
    assert votes.num_rows == 200_000
    assert sum(votes.column(name).to_numpy().sum() for name in ("first", "second", "tie")) == 1_000_000
