"""Checks every importer's output must pass: the registry contract for prompt sets and batches."""

from __future__ import annotations

import re
from pathlib import Path

from app.importers import ImportResult
from tests.support.services import SHARED_DATA as SHARED_DATA
from tests.support.services import shared_data as shared_data

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "importers"

ITEM_FIELDS = {
    "pair_id", "prompt_id", "response_a", "response_b", "model_a", "model_b", "shown_first", "annotator",
    "choice", "justification", "dimensions", "session_id", "started_at", "submitted_at", "gold",
}  # fmt: skip
PROMPT_FIELDS = {
    "id", "text", "source", "topic", "complexity", "turns", "privacy_reviewed", "production_validation",
}  # fmt: skip
UTC_STAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def assert_valid(result: ImportResult) -> None:
    """Fail unless `result` satisfies the prompt-set and annotation-batch contract."""
    ids = [p["id"] for p in result.prompts]
    assert len(ids) == len(set(ids)), "prompt ids repeat"
    for prompt in result.prompts:
        assert set(prompt) == PROMPT_FIELDS
        assert isinstance(prompt["text"], str)
        assert prompt["source"] in {"usage", "synthetic", "expert", "adversarial"}
        assert isinstance(prompt["turns"], int)
        assert prompt["turns"] >= 1
        assert prompt["complexity"] in {None, "low", "medium", "high"}
    keys = [(i["pair_id"], i["annotator"]) for i in result.items]
    assert len(keys) == len(set(keys)), "(pair_id, annotator) repeats"
    used = set()
    for item in result.items:
        assert set(item) - {"ai_choice"} == ITEM_FIELDS
        assert item["prompt_id"] in ids
        used.add(item["prompt_id"])
        assert item["choice"] in {"a", "b", "tie"}
        assert item["gold"] in {None, "a", "b", "tie"}
        assert item.get("ai_choice", "a") in {"a", "b", "tie"}
        assert item["shown_first"] in {None, "a", "b"}
        assert all(value in {"a", "b", "tie"} for value in item["dimensions"].values())
        assert isinstance(item["response_a"], str)
        assert isinstance(item["response_b"], str)
        for stamp in (item["started_at"], item["submitted_at"]):
            assert stamp is None or UTC_STAMP.fullmatch(stamp), stamp
        if item["started_at"] and item["submitted_at"]:
            assert item["started_at"] <= item["submitted_at"]
    assert used == set(ids), "every prompt is used by an item"
    # every pair shows the same two responses to every annotator
    pairs: dict[str, tuple[str, str, str]] = {}
    for item in result.items:
        seen = pairs.setdefault(item["pair_id"], (item["prompt_id"], item["response_a"], item["response_b"]))
        assert seen == (item["prompt_id"], item["response_a"], item["response_b"])
    meta = result.batch_meta
    assert {"annotator_pool", "tool", "collected_from", "collected_to", "ai_assisted"} <= set(meta)
    assert isinstance(meta["ai_assisted"], bool)
    for day in (meta["collected_from"], meta["collected_to"]):
        assert day is None or DATE.fullmatch(day)
    assert all(isinstance(note, str) and note for note in result.losses)
