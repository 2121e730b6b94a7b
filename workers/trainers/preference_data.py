"""The preference Parquet a run trains on: prompt, chosen, rejected, split and `dim_<dimension>` labels."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.core.errors import ValidationFailed

DIM_PREFIX = "dim_"
LABELS = ("chosen", "rejected", "tie")


@dataclass(frozen=True)
class Pair:
    prompt: str
    chosen: str
    rejected: str
    dimensions: dict[str, str | None] = field(default_factory=dict)


@dataclass(frozen=True)
class PreferenceData:
    train: list[Pair]
    validation: list[Pair]
    dimensions: list[str]


def _refuse(detail: str) -> ValidationFailed:
    return ValidationFailed(detail, errors=[{"loc": ["inputs", "dataset"], "msg": detail}])


def load_preferences(path: Path | None, *, needs_pairs: bool = True) -> PreferenceData:
    """Read the dataset in file order, split by its `split` column. A prompt-only dataset (no chosen and
    rejected columns) is enough for on-policy runs, which only sample prompts (`needs_pairs=False`)."""
    import pyarrow.parquet as pq

    if path is None:
        raise _refuse("this run kind needs a dataset")
    table = pq.read_table(path)
    columns = set(table.column_names)
    required = {"prompt", "split"} | ({"chosen", "rejected"} if needs_pairs else set())
    if not required <= columns:
        raise _refuse(f"the dataset lacks columns {sorted(required - columns)}")
    dimensions = sorted(c[len(DIM_PREFIX) :] for c in columns if c.startswith(DIM_PREFIX))
    has_pairs = {"chosen", "rejected"} <= columns
    rows = table.to_pylist()
    splits: dict[str, list[Pair]] = {"train": [], "validation": []}
    for row in rows:
        if row["split"] not in splits:
            raise _refuse(f"split {row['split']!r} is neither 'train' nor 'validation'")
        pair = Pair(
            prompt=row["prompt"],
            chosen=row["chosen"] if has_pairs else "",
            rejected=row["rejected"] if has_pairs else "",
            dimensions={d: row[DIM_PREFIX + d] for d in dimensions},
        )
        splits[row["split"]].append(pair)
    if not splits["train"]:
        raise _refuse("the dataset has no train rows")
    if not splits["validation"]:
        raise _refuse("the dataset has no validation rows: every figure a run registers is measured on them")
    return PreferenceData(train=splits["train"], validation=splits["validation"], dimensions=dimensions)


def to_dataset(columns: dict[str, list[Any]]) -> Any:
    """A `datasets.Dataset` of the columns, for TRL (datasets ships no type information)."""
    from datasets import Dataset, disable_progress_bars  # type: ignore[import-untyped]

    disable_progress_bars()
    return Dataset.from_dict(columns)


def unique_prompts(pairs: list[Pair], limit: int | None = None) -> list[str]:
    """Prompts in first-seen order, each once, at most `limit`."""
    seen = list(dict.fromkeys(p.prompt for p in pairs))
    return seen if limit is None else seen[:limit]
