"""Checkpoint evaluation campaigns over a package chain's models, judged by scripted evaluators (test
data): the campaign registered through the API, its blinded tasks exported, and judgments that follow a
given shape imported back as an evaluation."""

from __future__ import annotations

import json
from typing import Any

from tests.packages.chain import PackageChain

PROMPTS = [f"q{i}" for i in range(10)]
# on how many of the 10 prompts each step's answer beats the reference's
HUMANS_SAY = {50: 6, 100: 9, 150: 3}  # quality peaks at the deployed step 100, then degrades
JUDGE_SAYS = {50: 2, 100: 5, 150: 9}  # the reward model keeps preferring the later, longer answers


def _blob(chain: PackageChain, rows: list[dict[str, Any]]) -> str:
    return chain.blob("".join(json.dumps(row) + "\n" for row in rows).encode())


def campaign(chain: PackageChain, checkpoints: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A checkpoint series (the chain's policy series by default) and the chain's base model in one
    campaign: every model answers q0..q9, each answer saying who wrote it, so that scripted evaluators
    can judge the blinded tasks."""
    checkpoints = chain.series if checkpoints is None else checkpoints
    labels = {chain.base["id"]: "base"} | {c["id"]: f"step-{c['spec']['step']}" for c in checkpoints}
    rows = [
        {"prompt_id": p, "model": m, "response": f"{label} answers {p}"} for p in PROMPTS for m, label in labels.items()
    ]
    body = {
        "name": f"{checkpoints[0]['name']}-check",
        "checkpoints": [{"id": c["id"]} for c in checkpoints],
        "reference": {"id": chain.base["id"]},
        "prompt_set": {"id": chain.prompt_set["id"]},
        "spec": {"responses_blob": _blob(chain, rows), "seed": 3},
    }
    return chain.ok(chain.trainer, "evaluation-campaigns", body)


def _choice(task: dict[str, Any], beats: dict[int, int]) -> str:
    (left, prompt), (right, _) = (task[key].split(" answers ") for key in ("response_a", "response_b"))
    checkpoint, side = (left, "a") if left != "base" else (right, "b")
    wins = int(prompt.removeprefix("q")) < beats[int(checkpoint.removeprefix("step-"))]
    return side if wins else ("b" if side == "a" else "a")


def rate(
    chain: PackageChain, run: dict[str, Any], beats: dict[int, int], evaluators: list[str], name: str, kind: str
) -> dict[str, Any]:
    """An evaluation (`kind`: human_preference or ai_preference) of the campaign's blinded tasks, judged
    as `beats` says by every evaluator."""
    exported = chain.trainer.get(chain.url(f"evaluation-campaigns/{run['name']}/{run['version']}/tasks"))
    assert exported.status_code == 200, exported.text
    tasks = [json.loads(line) for line in exported.text.splitlines()]
    judgments = [
        {"task_id": t["task_id"], "evaluator": e, "choice": _choice(t, beats), "submitted_at": None}
        for t in tasks
        for e in evaluators
    ]
    spec = {"type": kind, "evidence_blob": _blob(chain, judgments)}
    return chain.ok(chain.trainer, "evaluations", {"name": name, "campaign": {"id": run["id"]}, "spec": spec})
