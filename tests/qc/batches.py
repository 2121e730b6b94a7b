"""Items tables for QC tests: random batches with gaps and swapped slots, and the real data sets."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa

from tests.support.services import SHARED_DATA

DATA = SHARED_DATA
PANDALM = DATA / "pandalm" / "testset-v1.json"
VICUNA = DATA / "prd-vicuna80" / "vicuna80"

TIMESTAMP = pa.timestamp("us", tz="UTC")
SCHEMA = pa.schema(
    [
        ("pair_id", pa.string()),
        ("annotator", pa.string()),
        ("choice", pa.string()),
        ("shown_first", pa.string()),
        ("response_a", pa.string()),
        ("response_b", pa.string()),
        ("session_id", pa.string()),
        ("started_at", TIMESTAMP),
        ("submitted_at", TIMESTAMP),
        ("gold", pa.string()),
        ("ai_choice", pa.string()),
    ]
)
T0 = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)
_FLIP = {"a": "b", "b": "a", "tie": "tie"}


def items_table(rows: list[dict[str, Any]]) -> pa.Table:
    """An items table from row dicts; absent keys are null."""
    return pa.Table.from_pylist([{name: row.get(name) for name in SCHEMA.names} for row in rows], SCHEMA)


def item(pair_id: str, annotator: str, choice: str, **fields: Any) -> dict[str, Any]:
    """One item row with short default responses ('x' < 'yy', so a = first, and b is longer)."""
    row: dict[str, Any] = {"pair_id": pair_id, "annotator": annotator, "choice": choice}
    row.setdefault("response_a", "x")
    row.setdefault("response_b", "yy")
    row.update(fields)
    return row


def random_rows(
    seed: int, *, n_pairs: int = 250, with_ai: bool = False, with_sessions: bool = True
) -> list[dict[str, Any]]:
    """A random batch: 3-7 annotators, ~30% of ratings missing, ties, per-item swapped A/B slots,
    unknown display order on some items, gold on ~15% of pairs, sessions with timestamps."""
    rng = np.random.default_rng(seed)
    annotators = [f"ann-{i:02d}" for i in range(int(rng.integers(3, 8)))]
    skill = {name: float(rng.uniform(0.45, 0.95)) for name in annotators}
    rows: list[dict[str, Any]] = []
    clock = {name: T0 + timedelta(minutes=int(rng.integers(0, 600))) for name in annotators}
    session_no = dict.fromkeys(annotators, 0)
    for p in range(n_pairs):
        texts = ["".join(rng.choice(list("abcdefgh"), size=int(rng.integers(1, 12)))) for _ in range(2)]
        texts[1] += "!" if texts[0] == texts[1] else ""  # identical texts have no canonical order
        truth = str(rng.choice(["a", "b", "tie"], p=[0.45, 0.45, 0.1]))  # preference for texts[0]/[1]
        gold = truth if rng.random() < 0.15 else None
        for name in annotators:
            if rng.random() < 0.3:
                continue
            said = truth if rng.random() < skill[name] else str(rng.choice(["a", "b", "tie"], p=[0.4, 0.4, 0.2]))
            swap = bool(rng.random() < 0.5)
            row = item(
                f"p{p:04d}",
                name,
                _FLIP[said] if swap else said,
                response_a=texts[1] if swap else texts[0],
                response_b=texts[0] if swap else texts[1],
                gold=None if gold is None else (_FLIP[gold] if swap else gold),
                shown_first=None if rng.random() < 0.2 else str(rng.choice(["a", "b"])),
            )
            if with_ai and rng.random() < 0.6:
                suggestion = truth if rng.random() < 0.7 else str(rng.choice(["a", "b", "tie"]))
                row["ai_choice"] = _FLIP[suggestion] if swap else suggestion
            if with_sessions and rng.random() < 0.9:
                if rng.random() < 0.05:
                    session_no[name] += 1
                    clock[name] += timedelta(hours=12)
                started = clock[name]
                clock[name] += timedelta(seconds=int(rng.integers(20, 400)))
                row["session_id"] = f"s{session_no[name]}"
                row["started_at"] = None if rng.random() < 0.05 else started
                row["submitted_at"] = None if rng.random() < 0.05 else clock[name]
            rows.append(row)
    return rows


def _text(value: Any) -> str:
    # Six PandaLM responses were parsed as JSON booleans; the annotators saw Python's "True".
    return value if isinstance(value, str) else str(value)


def pandalm_rows() -> list[dict[str, Any]]:
    """PandaLM test set: 999 pairs x 3 annotators; 0 tie, 1 response1 better, 2 response2 better."""
    labels = {0: "tie", 1: "a", 2: "b"}
    rows = []
    for record in json.loads(PANDALM.read_text()):
        for slot in ("annotator1", "annotator2", "annotator3"):
            rows.append(
                item(
                    str(record["idx"]),
                    slot,
                    labels[int(record[slot])],
                    response_a=_text(record["response1"]),
                    response_b=_text(record["response2"]),
                )
            )
    return rows


def vicuna_rows() -> list[dict[str, Any]]:
    """PRD Vicuna-80 crowd ratings (1 A better, 2 B better, 3 tie); pair = question + sorted models.

    A-vs-B and B-vs-A files are the same pair in swapped slots. Rater ids are absent: rater slots
    r1, r2, ... are assigned in file order per pair. Pairs with a model whose answers are not
    included (guanaco) are skipped.
    """
    answers: dict[str, dict[int, str]] = {}
    for path in sorted((VICUNA / "generations").glob("answer_*.jsonl")):
        model = path.stem.removeprefix("answer_")
        answers[model] = {int(r["question_id"]): r["text"] for r in map(json.loads, path.read_text().splitlines())}
    labels = {1: "a", 2: "b", 3: "tie"}
    slots: dict[str, int] = defaultdict(int)
    rows = []
    for path in sorted((VICUNA / "ratings-human").glob("*.jsonl")):
        match = re.fullmatch(r"answer_(.+)-vs-answer_(.+)-human-reviewer_threeclass", path.stem)
        assert match is not None, path
        model_a, model_b = match.groups()
        if model_a not in answers or model_b not in answers:
            continue
        for line in path.read_text().splitlines():
            rating = json.loads(line)
            question = int(rating["question_id"])
            pair_id = f"{question}:{'|'.join(sorted([model_a, model_b]))}"
            slots[pair_id] += 1
            rows.append(
                item(
                    pair_id,
                    f"r{slots[pair_id]}",
                    labels[int(rating["score"])],
                    response_a=answers[model_a][question],
                    response_b=answers[model_b][question],
                )
            )
    return rows


def large_table(n_pairs: int, n_annotators: int, seed: int = 0) -> pa.Table:
    """A random batch where every annotator rates every pair, built without Python loops per item."""
    rng = np.random.default_rng(seed)
    n = n_pairs * n_annotators
    pair = np.repeat(np.arange(n_pairs), n_annotators)
    annotator = np.tile(np.arange(n_annotators), n_pairs)
    pair_ids = pa.array([f"p{i:07d}" for i in range(n_pairs)])
    pads = pa.array(["", "x" * 10, "y" * 40, "z" * 100, "w" * 300])
    text_1 = pa.compute.binary_join_element_wise(pair_ids, pads.take(rng.integers(0, 5, n_pairs)), "-1-")
    text_2 = pa.compute.binary_join_element_wise(pair_ids, pads.take(rng.integers(0, 5, n_pairs)), "-2-")
    swap = rng.random(n) < 0.5
    idx = pa.array(pair)
    first, second = text_1.take(idx), text_2.take(idx)
    choices = pa.array(["a", "b", "tie"])
    truth = rng.choice(3, size=n_pairs, p=[0.45, 0.45, 0.1])[pair]
    said = np.where(rng.random(n) < 0.8, truth, rng.integers(0, 3, n))
    choice = np.where(swap & (said < 2), 1 - said, said)
    starts = T0.timestamp() * 1e6 + rng.integers(0, 3_600_000_000, n)
    return pa.table(
        {
            "pair_id": pair_ids.take(idx),
            "annotator": pa.array([f"ann-{i}" for i in range(n_annotators)]).take(pa.array(annotator)),
            "choice": choices.take(pa.array(choice)),
            "shown_first": choices.take(pa.array(rng.integers(0, 2, n))),
            "response_a": pa.compute.if_else(pa.array(swap), second, first),
            "response_b": pa.compute.if_else(pa.array(swap), first, second),
            "session_id": pa.array([f"s{i}" for i in range(7 * n_annotators)]).take(pa.array(annotator * 7 + pair % 7)),
            "started_at": pa.array(starts.astype(np.int64), TIMESTAMP),
            "submitted_at": pa.array((starts + 90_000_000).astype(np.int64), TIMESTAMP),
            "gold": pa.nulls(n, pa.string()),
            "ai_choice": pa.nulls(n, pa.string()),
        },
        schema=SCHEMA,
    )
