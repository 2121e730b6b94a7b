"""Consolidating annotation items into a preference dataset in the TRL format (prompt, chosen, rejected).

Deterministic: the same items, rules and seed give the same rows in the same order, and the Parquet
file written from them has the same bytes (same pyarrow version). Steps, each counted:
  1. canonical orientation: per item, the pair is (prompt, first, second) with first < second as text,
     so one pair seen with A/B swapped by different annotators is one pair;
  2. majority vote over first / second / tie; equal top counts are a tie;
  3. ties dropped, or broken by length when the criteria's tie-breaking rule says so (`tie_break`);
  4. high-disagreement pairs (share of `first` among non-tie votes inside the policy band, with at
     least two non-tie votes) excluded;
  5. prompts reserved for production validation kept out of the dataset;
  6. split by prompt: prompts ordered by sha256(seed:prompt_id), the first round(share * n) go to
     validation, so no prompt is in both splits.
Votes from AI-labelled batches (an `ai_labelled` column of the items) count like any other, and the
counts say how many pairs out carry one (`ai_labelled_pairs`) and how many carry nothing else
(`ai_only_pairs`): a dataset never passes AI labels off as human ones.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

KEY = ["prompt_id", "first", "second"]


@dataclass(frozen=True)
class BuildRules:
    validation_share: float
    drop_ties: bool
    tie_break: str | None  # "shorter" | "longer" when ties are kept
    exclude_high_disagreement: bool
    band: tuple[float, float]
    seed: int


def _label(choice: pa.ChunkedArray, swapped: pa.ChunkedArray) -> pa.ChunkedArray:
    """a/b/tie in the item's slots -> first/second/tie in canonical orientation."""
    first = pc.if_else(swapped, "b", "a")
    return pc.if_else(pc.equal(choice, "tie"), "tie", pc.if_else(pc.equal(choice, first), "first", "second"))


def canonical_votes(items: pa.Table, dimensions: list[str]) -> pa.Table:
    swapped = pc.greater(items["response_a"], items["response_b"])
    label = _label(items["choice"], swapped)
    columns: dict[str, Any] = {
        "prompt_id": items["prompt_id"],
        "first": pc.if_else(swapped, items["response_b"], items["response_a"]),
        "second": pc.if_else(swapped, items["response_a"], items["response_b"]),
    }
    for value in ("first", "second", "tie"):
        columns[f"v_{value}"] = pc.cast(pc.equal(label, value), pa.int64())
    columns["ai_votes"] = pc.cast(items["ai_labelled"], pa.int64())
    for dim in dimensions:
        name = f"dim__{dim}"
        if name in items.column_names:
            dim_label = _label(items[name], swapped)
            for value in ("first", "second", "tie"):
                columns[f"d_{dim}_{value}"] = pc.cast(pc.fill_null(pc.equal(dim_label, value), False), pa.int64())
    return pa.table(columns)


def _majority(first: np.ndarray, second: np.ndarray, tie: np.ndarray) -> np.ndarray:
    """1 = first wins, -1 = second wins, 0 = tie (a tie vote wins or the top counts are equal)."""
    top = np.maximum(np.maximum(first, second), tie)
    first_wins = (first == top) & (second < top) & (tie < top)
    second_wins = (second == top) & (first < top) & (tie < top)
    return np.where(first_wins, 1, np.where(second_wins, -1, 0))


def split_prompts(prompt_ids: list[str], share: float, seed: int) -> set[str]:
    ordered = sorted(prompt_ids, key=lambda p: hashlib.sha256(f"{seed}:{p}".encode()).hexdigest())
    return set(ordered[: round(share * len(ordered))])


def build(
    items: pa.Table, prompts: pa.Table, dimensions: list[str], rules: BuildRules
) -> tuple[pa.Table, dict[str, Any]]:
    """(dataset table, counts) from items of every batch (each marked `ai_labelled` or not) and the
    prompts they reference."""
    votes = canonical_votes(items, dimensions)
    sums = [c for c in votes.column_names if c.startswith(("v_", "d_", "ai_"))]
    pairs = votes.group_by(KEY).aggregate([(c, "sum") for c in sums]).sort_by([(k, "ascending") for k in KEY])
    first = pairs["v_first_sum"].to_numpy()
    second = pairs["v_second_sum"].to_numpy()
    tie = pairs["v_tie_sum"].to_numpy()
    outcome = _majority(first, second, tie)
    counts: dict[str, Any] = {"votes_in": items.num_rows, "pairs_in": pairs.num_rows, "dropped": {}}

    keep = np.ones(pairs.num_rows, dtype=bool)
    is_tie = outcome == 0
    if rules.drop_ties:
        keep &= ~is_tie
        counts["dropped"]["tie"] = int(is_tie.sum())
    else:
        first_len = pc.utf8_length(pairs["first"]).to_numpy()
        second_len = pc.utf8_length(pairs["second"]).to_numpy()
        prefer_first = first_len <= second_len if rules.tie_break == "shorter" else first_len >= second_len
        equal_len = first_len == second_len
        outcome = np.where(is_tie & ~equal_len, np.where(prefer_first, 1, -1), outcome)
        unresolved = is_tie & equal_len
        keep &= ~unresolved
        counts["dropped"]["tie_unresolved"] = int(unresolved.sum())
        counts["tie_broken"] = int((is_tie & ~equal_len).sum())

    non_tie = first + second
    with np.errstate(invalid="ignore", divide="ignore"):
        share_first = np.where(non_tie > 0, first / np.maximum(non_tie, 1), np.nan)
    low, high = rules.band
    disagreement = (non_tie >= 2) & (share_first >= low) & (share_first <= high)
    if rules.exclude_high_disagreement:
        dropped = keep & disagreement
        counts["dropped"]["high_disagreement"] = int(dropped.sum())
        keep &= ~disagreement

    reserved_ids = prompts.filter(pc.fill_null(prompts["production_validation"], False))["id"]
    reserved = pc.is_in(pairs["prompt_id"], reserved_ids).to_numpy(zero_copy_only=False)
    counts["dropped"]["production_validation_reserved"] = int((keep & reserved).sum())
    keep &= ~reserved

    kept = pairs.filter(pa.array(keep))
    kept_outcome = outcome[keep]
    first_chosen = pa.array(kept_outcome == 1)
    validation = split_prompts(pc.unique(kept["prompt_id"]).to_pylist(), rules.validation_share, rules.seed)
    prompt_text = prompts.select(["id", "text"]).group_by("id", use_threads=False).aggregate([("text", "first")])
    text_by_id = dict(zip(prompt_text["id"].to_pylist(), prompt_text["text_first"].to_pylist(), strict=True))

    columns: dict[str, Any] = {
        "prompt": pa.array([text_by_id[p] for p in kept["prompt_id"].to_pylist()], pa.string()),
        "chosen": pc.if_else(first_chosen, kept["first"], kept["second"]),
        "rejected": pc.if_else(first_chosen, kept["second"], kept["first"]),
        "prompt_id": kept["prompt_id"],
        "split": pa.array(["validation" if p in validation else "train" for p in kept["prompt_id"].to_pylist()]),
        "votes_chosen": pc.if_else(first_chosen, kept["v_first_sum"], kept["v_second_sum"]),
        "votes_rejected": pc.if_else(first_chosen, kept["v_second_sum"], kept["v_first_sum"]),
        "votes_tie": kept["v_tie_sum"],
    }
    for dim in dimensions:
        if f"d_{dim}_first_sum" not in kept.column_names:
            continue
        dim_outcome = _majority(
            kept[f"d_{dim}_first_sum"].to_numpy(),
            kept[f"d_{dim}_second_sum"].to_numpy(),
            kept[f"d_{dim}_tie_sum"].to_numpy(),
        )
        voted = (
            kept[f"d_{dim}_first_sum"].to_numpy()
            + kept[f"d_{dim}_second_sum"].to_numpy()
            + kept[f"d_{dim}_tie_sum"].to_numpy()
        ) > 0
        agrees = np.where(kept_outcome == 1, dim_outcome == 1, dim_outcome == -1)
        labels = np.where(dim_outcome == 0, "tie", np.where(agrees, "chosen", "rejected"))
        columns[f"dim_{dim}"] = pa.array(labels.tolist(), pa.string(), mask=~voted)
    table = pa.table(columns).sort_by(
        [
            ("split", "ascending"),
            ("prompt_id", "ascending"),
            ("chosen", "ascending"),
            ("rejected", "ascending"),
        ]
    )
    split = table["split"]
    counts["train"] = int(pc.sum(pc.equal(split, "train")).as_py() or 0)
    counts["validation"] = int(pc.sum(pc.equal(split, "validation")).as_py() or 0)
    counts["pairs_out"] = table.num_rows
    counts["prompts_validation"] = len(validation)
    counts["prompts_out"] = len(set(kept["prompt_id"].to_pylist()))
    counts["high_disagreement_pairs"] = int(disagreement.sum())
    ai_votes = kept["ai_votes_sum"].to_numpy()
    all_votes = kept["v_first_sum"].to_numpy() + kept["v_second_sum"].to_numpy() + kept["v_tie_sum"].to_numpy()
    counts["ai_labelled_pairs"] = int((ai_votes > 0).sum())
    counts["ai_only_pairs"] = int(((ai_votes > 0) & (ai_votes == all_votes)).sum())
    return table, counts


def to_parquet_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd", write_statistics=True)
    return bytes(sink.getvalue().to_pybytes())
