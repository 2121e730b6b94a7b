"""`score` runs: a reward checkpoint scores a registered set of outputs (for models reached only through a
vendor API), written to `scores.jsonl`, with summary figures for the evaluation record."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from app.core.errors import ValidationFailed
from workers.trainers.reward_scoring import RewardScorer, spearman
from workers.trainers.run_inputs import provenance, required_folder, start
from workers.trainers.spec import TrainJob, TrainResult

SCORES_FILE = "scores.jsonl"


def _refuse(detail: str) -> ValidationFailed:
    return ValidationFailed(detail, errors=[{"loc": ["inputs", "outputs_blob"], "msg": detail}])


def read_outputs(path: Path | None) -> list[dict[str, Any]]:
    """The JSONL of `{prompt, response, id?, prompt_id?}` objects, one a line; blank lines skipped."""
    if path is None:
        raise _refuse("a score run needs inputs.outputs_blob")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise _refuse(f"line {number} of the outputs is not JSON: {exc.msg}") from exc
        if not (isinstance(row, dict) and isinstance(row.get("prompt"), str) and isinstance(row.get("response"), str)):
            raise _refuse(f"line {number} of the outputs is not an object with string prompt and response")
        rows.append(row)
    if not rows:
        raise _refuse("the outputs hold no line to score")
    return rows


def run(job: TrainJob) -> TrainResult:
    params = start(job)
    reward_dir = required_folder(job.reward_model_dir, "reward_checkpoint", job.kind)
    rows = read_outputs(job.outputs_path)
    scorer = RewardScorer.load(
        reward_dir, max_length=params.get("max_length"), batch_size=int(params.get("per_device_batch_size", 8))
    )
    config = {
        "reward_text": "prompt + response + eos_token",
        "max_length": scorer.max_length,
        "batch_size": scorer.batch_size,
        "eos_token": scorer.tokenizer.eos_token,
    }
    carried = provenance(job.kind, params, config)
    if job.should_stop():
        return TrainResult(None, {}, config, carried["library_versions"], params=params, stopped=True)
    scores = scorer.score([r["prompt"] for r in rows], [r["response"] for r in rows])
    job.output_dir.mkdir(parents=True, exist_ok=True)
    with (job.output_dir / SCORES_FILE).open("w", encoding="utf-8") as out:
        for index, (row, value) in enumerate(zip(rows, scores, strict=True)):
            scored = {"id": row.get("id", index), "score": value}
            if isinstance(row.get("prompt_id"), str):  # per-prompt evidence (an adversarial evaluation's)
                scored["prompt_id"] = row["prompt_id"]
            out.write(json.dumps(scored, sort_keys=True) + "\n")
    values = np.asarray(scores, dtype=float)
    metrics = {
        "count": len(scores),
        "mean": float(values.mean()),
        "std": float(values.std()),
        "min": float(values.min()),
        "max": float(values.max()),
        "reward_length_spearman": spearman([len(r["response"]) for r in rows], scores),
    }
    job.on_metrics(0, {k: v for k, v in metrics.items() if isinstance(v, float)})
    return TrainResult(job.output_dir, metrics, config, carried["library_versions"], params=params)
