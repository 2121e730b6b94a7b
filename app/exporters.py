"""Turn a registered preference dataset (its Parquet file) into what a trainer reads: TRL-ready JSONL
(`prompt`, `chosen`, `rejected` per line) or Parquet, optionally one split only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

TRL_COLUMNS = ["prompt", "chosen", "rejected"]


def select_split(table: pa.Table, split: Literal["train", "validation", "all"]) -> pa.Table:
    return table if split == "all" else table.filter(pc.equal(table["split"], split))


def export_dataset(
    source: Path,
    dest: Path,
    *,
    fmt: Literal["jsonl", "parquet"],
    split: Literal["train", "validation", "all"] = "all",
    with_labels: bool = False,
) -> int:
    """Write the dataset rows to `dest`; returns the number of rows. Labels (split, votes, per-dimension
    labels) are kept with `with_labels`, otherwise only the three TRL columns."""
    table = select_split(pq.read_table(source), split)
    if not with_labels:
        table = table.select(TRL_COLUMNS)
    if fmt == "parquet":
        pq.write_table(table, dest, compression="zstd")
    else:
        with dest.open("w", encoding="utf-8") as fh:
            for batch in table.to_batches(max_chunksize=10_000):
                for row in batch.to_pylist():
                    fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return int(table.num_rows)
