"""Small builders for request bodies; tests override only what they are about."""

from __future__ import annotations

import copy
from typing import Any

BASE_CRITERIA: dict[str, Any] = {
    "dimensions": [
        {"name": "accuracy", "description": "Facts are right and sourced.", "rank": 1},
        {"name": "helpfulness", "description": "Answers what was asked.", "rank": 2},
    ],
    "disqualifiers": [
        {"code": "hallucinated_citation", "description": "Cites a source that does not exist."}
    ],
    "tie_breaking": ["prefer the more concise response"],
    "scope": {
        "in_scope": ["single-turn questions"],
        "out_of_scope": ["medical advice"],
        "special_handling": [],
    },
    "playbook": "# Playbook\nRead both answers fully before choosing.",
    "gold_examples": [
        {"prompt": "2+2?", "response_a": "4", "response_b": "5", "answer": "a", "why": "arithmetic"}
    ],
}


def criteria_spec(**overrides: Any) -> dict[str, Any]:
    spec = copy.deepcopy(BASE_CRITERIA)
    spec.update(overrides)
    return spec


def criteria_body(
    version: str = "1.0.0", name: str = "assistant-quality", **spec_overrides: Any
) -> dict[str, Any]:
    return {"name": name, "version": version, "spec": criteria_spec(**spec_overrides)}


def reranked_dimensions() -> list[dict[str, Any]]:
    return [
        {"name": "accuracy", "description": "Facts are right and sourced.", "rank": 2},
        {"name": "helpfulness", "description": "Answers what was asked.", "rank": 1},
    ]
