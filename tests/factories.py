"""Small builders for request bodies; tests override only what they are about."""

from __future__ import annotations

import copy
import json
from typing import Any

BASE_CRITERIA: dict[str, Any] = {
    "dimensions": [
        {"name": "accuracy", "description": "Facts are right and sourced.", "rank": 1},
        {"name": "helpfulness", "description": "Answers what was asked.", "rank": 2},
    ],
    "disqualifiers": [{"code": "hallucinated_citation", "description": "Cites a source that does not exist."}],
    "tie_breaking": ["prefer the more concise response"],
    "scope": {
        "in_scope": ["single-turn questions"],
        "out_of_scope": ["medical advice"],
        "special_handling": [],
    },
    "playbook": "# Playbook\nRead both answers fully before choosing.",
    "gold_examples": [{"prompt": "2+2?", "response_a": "4", "response_b": "5", "answer": "a", "why": "arithmetic"}],
}


def criteria_spec(**overrides: Any) -> dict[str, Any]:
    spec = copy.deepcopy(BASE_CRITERIA)
    spec.update(overrides)
    return spec


def criteria_body(version: str = "1.0.0", name: str = "assistant-quality", **spec_overrides: Any) -> dict[str, Any]:
    return {"name": name, "version": version, "spec": criteria_spec(**spec_overrides)}


def reranked_dimensions() -> list[dict[str, Any]]:
    return [
        {"name": "accuracy", "description": "Facts are right and sourced.", "rank": 2},
        {"name": "helpfulness", "description": "Answers what was asked.", "rank": 1},
    ]


def prompt(pid: str, source: str = "usage", **over: Any) -> dict[str, Any]:
    return {
        "id": pid,
        "text": f"Question {pid}: how does this work?",
        "source": source,
        "topic": "general",
        "complexity": "medium",
        "turns": 1,
        "privacy_reviewed": True,
        "production_validation": False,
        **over,
    }


def prompt_mix(n: int = 20) -> list[dict[str, Any]]:
    """A mix inside the default policy target: 65% usage, 20% synthetic, 15% edge."""
    usage, synthetic = round(n * 0.65), round(n * 0.20)
    sources = ["usage"] * usage + ["synthetic"] * synthetic + ["adversarial"] * (n - usage - synthetic)
    return [prompt(f"q{i}", source, complexity=("low", "medium", "high")[i % 3]) for i, source in enumerate(sources)]


def prompt_set_body(prompts: list[dict[str, Any]] | None = None, version: str = "1.0.0") -> dict[str, Any]:
    return {
        "name": "core-prompts",
        "version": version,
        "spec": {
            "sampling_procedure": "Stratified sample of week-46 traffic.",
            "prompts": prompts or prompt_mix(),
        },
    }


def item(pair: str, prompt_id: str, annotator: str, choice: str, **over: Any) -> dict[str, Any]:
    return {
        "pair_id": pair,
        "prompt_id": prompt_id,
        "response_a": f"answer A to {prompt_id} in pair {pair}",
        "response_b": f"answer B to {prompt_id} in pair {pair}, longer and more detailed",
        "model_a": "sft-v3",
        "model_b": "sft-v4",
        "shown_first": "a" if hash(pair + annotator) % 2 else "b",
        "annotator": annotator,
        "choice": choice,
        "justification": "clearer",
        "dimensions": {"accuracy": choice},
        "session_id": f"s-{annotator}",
        "started_at": "2026-11-16T09:00:00Z",
        "submitted_at": "2026-11-16T09:02:10Z",
        "gold": None,
        **over,
    }


def agreeing_items(
    n_pairs: int = 20, annotators: tuple[str, ...] = ("ann-1", "ann-2", "ann-3")
) -> list[dict[str, Any]]:
    """High agreement: every annotator picks the same side, with a realistic sprinkle of disagreement."""
    rows = []
    for p in range(n_pairs):
        majority = "a" if p % 3 else "b"
        for k, annotator in enumerate(annotators):
            choice = majority if (p + k) % 11 else ("b" if majority == "a" else "a")
            rows.append(item(f"p{p}", f"q{p % 20}", annotator, choice))
    return rows


def batch_body(
    items: list[dict[str, Any]], criteria: str = "1.0.0", prompts: str = "1.0.0", **spec: Any
) -> dict[str, Any]:
    return {
        "name": "vendor-a-week-47",
        "criteria": {"name": "assistant-quality", "version": criteria},
        "prompt_set": {"name": "core-prompts", "version": prompts},
        "spec": {
            "annotator_pool": "vendor-a",
            "tool": "label-studio",
            "collected_from": "2026-11-16",
            "collected_to": "2026-11-20",
            "ai_assisted": False,
            "items": items,
            **spec,
        },
    }


def evaluation_results(name: str, n: int = 20) -> bytes:
    """Per-prompt results (JSONL rows with prompt_id) on every prompt of `prompt_mix(n)`, its adversarial
    ones included; `name` makes each evaluation's evidence its own blob."""
    return "".join(
        json.dumps({"prompt_id": f"q{i}", "evaluation": name, "score": 0.5}) + "\n" for i in range(n)
    ).encode()


def evaluation_body(
    target: str, kind: str, name: str, *, evidence: str, evaluator: str, reference: str | None = None
) -> dict[str, Any]:
    """An evaluation of record `target` whose evidence meets its type's rules (app.decisions.evidence):
    `evaluator` is a project member who trained nothing, `evidence` the digest of `evaluation_results`
    on the `core-prompts` prompt set, and `reference` the target's own reference model (kl)."""
    summary: dict[str, Any] = {"win_rate": 0.61}
    if kind in ("human_preference", "human_rating"):
        summary["judgments"] = 60
    if kind == "length_reward_correlation":
        summary.update(correlation=0.12, sample_size=20)
    body: dict[str, Any] = {
        "name": name,
        "target": {"id": target},
        "spec": {"type": kind, "summary": summary, "evidence_blob": evidence, "evaluators": [evaluator]},
    }
    if kind == "adversarial":
        body["prompt_set"] = {"name": "core-prompts", "version": "1.0.0"}
    if kind == "kl" and reference is not None:
        body["reference"] = {"id": reference}
    return body
