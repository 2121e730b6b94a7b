"""Hugging Face / TRL preference rows: standard, conversational, implicit-prompt and HH-RLHF transcripts."""

from __future__ import annotations

import gzip
import itertools
import json
from typing import Any

import pytest

from app.importers import ImportFormatError, from_hf_preference_jsonl
from tests.importers.spec_checks import FIXTURES, assert_valid, shared_data


def _lines(name: str) -> list[str]:
    return (FIXTURES / name).read_text(encoding="utf-8").splitlines()


def _chosen(item: dict[str, Any]) -> str:
    return str(item["response_a"] if item["choice"] == "a" else item["response_b"])


def test_standard_rows() -> None:
    result = from_hf_preference_jsonl(_lines("hf_plain.jsonl"))
    assert_valid(result)
    assert len(result.items) == 3  # four rows, one repeated
    assert {i["annotator"] for i in result.items} == {"source"}
    assert {i["shown_first"] for i in result.items} == {None}
    by_prompt = {p["id"]: p["text"] for p in result.prompts}
    chosen = {by_prompt[i["prompt_id"]]: _chosen(i) for i in result.items}
    assert chosen["What color is the sky on a clear day?"] == "Blue."
    assert chosen["Name the capital of Japan."] == "Tokyo."
    assert all(i["pair_id"].startswith("hf-") for i in result.items)
    losses = "\n".join(result.losses)
    assert "1 repeated (pair_id, annotator) judgement(s)" in losses
    assert "no tie option" in losses
    assert "every item is by 'source'" in losses
    assert result.batch_meta["collected_from"] is None


def test_placement_is_deterministic_and_order_free() -> None:
    row = {"prompt": "p", "chosen": "good", "rejected": "bad"}
    flipped = {"prompt": "p", "chosen": "bad", "rejected": "good"}
    one = from_hf_preference_jsonl([row])
    again = from_hf_preference_jsonl([json.dumps(row)])
    other = from_hf_preference_jsonl([flipped])
    assert one.items == again.items
    assert one.items[0]["pair_id"] == other.items[0]["pair_id"]
    assert (one.items[0]["response_a"], one.items[0]["response_b"]) == (
        other.items[0]["response_a"],
        other.items[0]["response_b"],
    )
    assert one.items[0]["choice"] != other.items[0]["choice"]
    fixed = from_hf_preference_jsonl([row, flipped], placement="chosen_a", annotator="vendor-x", id_field=None)
    assert [i["choice"] for i in fixed.items] == ["a"]  # the same pair and annotator: the last row kept
    assert fixed.items[0]["response_a"] == "bad"


def test_conversational_rows_with_explicit_and_implicit_prompt() -> None:
    result = from_hf_preference_jsonl(_lines("hf_conversational.jsonl"))
    assert_valid(result)
    prompts = {p["id"]: p for p in result.prompts}
    explicit, implicit = result.items
    assert json.loads(prompts[explicit["prompt_id"]]["text"]) == [{"role": "user", "content": "What color is the sky?"}]
    assert _chosen(explicit) == "It is blue."
    shared = json.loads(prompts[implicit["prompt_id"]]["text"])
    assert [m["role"] for m in shared] == ["user", "assistant", "user"]
    assert prompts[implicit["prompt_id"]]["turns"] == 2
    assert _chosen(implicit) == "Owls can rotate their heads about 270 degrees."
    assert {implicit["response_a"], implicit["response_b"]} == {
        "Owls can rotate their heads about 270 degrees.",
        "Owls are fish.",
    }


def test_hh_transcripts_split_at_the_last_shared_assistant_turn() -> None:
    result = from_hf_preference_jsonl(_lines("hh_transcripts.jsonl"))
    assert_valid(result)
    prompts = {p["id"]: p for p in result.prompts}
    single, multi = result.items
    assert prompts[single["prompt_id"]]["text"] == "\n\nHuman: How do I boil an egg?\n\nAssistant:"
    assert prompts[single["prompt_id"]]["turns"] == 1
    # both responses of the second row start with " Sure,": the cut stays at the turn marker
    assert prompts[multi["prompt_id"]]["turns"] == 2
    assert _chosen(multi) == " Sure, let us start with its causes: debt, bad harvests and new ideas."
    assert prompts[multi["prompt_id"]]["text"].endswith("The French Revolution.\n\nAssistant:")


def test_real_hh_rlhf_rows_reassemble_exactly() -> None:
    path = shared_data("hh-rlhf/harmless-base-test.jsonl.gz")
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        rows = [json.loads(line) for line in itertools.islice(handle, 200)]
    result = from_hf_preference_jsonl(rows)
    assert_valid(result)
    assert len(result.items) == 200
    prompts = {p["id"]: p["text"] for p in result.prompts}
    for row, item in zip(rows, result.items, strict=True):
        rejected = item["response_b"] if item["choice"] == "a" else item["response_a"]
        assert prompts[item["prompt_id"]] + _chosen(item) == row["chosen"]
        assert prompts[item["prompt_id"]] + rejected == row["rejected"]
        assert "\n\nHuman:" not in _chosen(item)
    share_a = sum(i["choice"] == "a" for i in result.items) / len(result.items)
    assert 0.35 < share_a < 0.65  # the chosen response has no constant slot


def test_malformed_rows_are_refused() -> None:
    with pytest.raises(ImportFormatError):
        from_hf_preference_jsonl(["{not json"])
    with pytest.raises(ImportFormatError):
        from_hf_preference_jsonl([{"chosen": "plain text", "rejected": "other text"}])
    with pytest.raises(ImportFormatError):
        from_hf_preference_jsonl([{"prompt": "p", "chosen": "c"}])
