"""Per-sample reward evidence for the reward distribution and length-against-reward figures.

An evaluation of type `reward_score` or `length_reward_correlation` may carry an evidence blob in JSONL,
one scored sample a line: `{"score" | "reward": number, "length" | "response": ...}`. A `score` run writes
only `{"id", "score"}`; the lengths then come from the outputs the run scored (its `outputs_blob`),
joined by `id`, else by position. Evidence in any other format is listed but not plotted."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.core.errors import AppError
from app.core.json_limits import loads_body
from app.packages.gather import Closure, run_id_of
from app.records.models import Record
from app.storage.base import BlobStore

SAMPLE_EVALUATIONS = ("reward_score", "length_reward_correlation")
MAX_EVIDENCE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class RewardSamples:
    evaluation: Record
    target: Record
    scores: list[float]
    lengths: list[int] | None


def _jsonl(store: BlobStore, digest: str) -> list[dict[str, Any]] | None:
    size = store.size(digest)
    if size is None or size > MAX_EVIDENCE_BYTES:
        return None
    data = b"".join(store.iter_bytes(digest))
    rows = []
    try:
        for line in data.decode("utf-8").splitlines():
            if line.strip():
                row = loads_body(line.encode("utf-8"))
                if not isinstance(row, dict):
                    return None
                rows.append(row)
    except (UnicodeDecodeError, ValueError, AppError):
        # not JSON lines the registry could have accepted as a body (NaN, huge integers, deep nesting):
        # no evidence to draw, as for any other unreadable file
        return None
    return rows


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _length(row: dict[str, Any]) -> int | None:
    for key in ("length", "response_length"):
        if isinstance(row.get(key), int) and not isinstance(row.get(key), bool):
            return int(row[key])
    return len(row["response"]) if isinstance(row.get("response"), str) else None


def _lengths_from_run(
    closure: Closure, store: BlobStore, evaluation: Record, rows: list[dict[str, Any]]
) -> list[int] | None:
    run_id = run_id_of(evaluation)
    run = closure.runs.get(run_id) if run_id else None
    digest = run.inputs.get("outputs_blob") if run is not None else None
    outputs = _jsonl(store, digest) if isinstance(digest, str) else None
    if not outputs:
        return None
    by_id = {str(o["id"]): o for o in outputs if "id" in o}
    lengths = []
    for index, row in enumerate(rows):
        source = (
            by_id.get(str(row["id"])) if "id" in row and by_id else (outputs[index] if index < len(outputs) else None)
        )
        length = _length(source) if source is not None else None
        if length is None:
            return None
        lengths.append(length)
    return lengths


def reward_samples(closure: Closure, store: BlobStore) -> list[RewardSamples]:
    """The scored samples of every sample-level reward evaluation in the package, in record order."""
    found = []
    for evaluation in closure.of_kind("evaluation"):
        digest = evaluation.spec.get("evidence_blob")
        if evaluation.spec.get("type") not in SAMPLE_EVALUATIONS or not digest:
            continue
        rows = _jsonl(store, digest)
        if not rows:
            continue
        scores = [_number(row.get("score", row.get("reward"))) for row in rows]
        if any(s is None for s in scores):
            continue
        lengths: list[int] | None = [n for row in rows if (n := _length(row)) is not None]
        if lengths is None or len(lengths) != len(rows):
            lengths = _lengths_from_run(closure, store, evaluation, rows)
        targets = closure.parents(evaluation, "target")
        if not targets:
            continue
        found.append(RewardSamples(evaluation, targets[0], [s for s in scores if s is not None], lengths))
    return found
