"""Argilla 2.x exports: the flattened (to_list(flatten=True) / to_datasets) and the nested (to_dict) form."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.importers import ImportFormatError, from_argilla
from tests.importers.spec_checks import FIXTURES, assert_valid

U = "8a1f6b62-0c52-4d0e-9f1a-1b2c3d4e5f0"  # user ids of the flat fixture, + 1..3
V = "0b6f3c1e-2d4a-4e8f-9a7b-6c5d4e3f2a1"  # user ids of the nested fixture, + 0..1


def _flat() -> list[dict[str, Any]]:
    lines = (FIXTURES / "argilla_flat.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _nested() -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = json.loads((FIXTURES / "argilla_nested.json").read_text(encoding="utf-8"))
    return records


def test_flat_form_with_statuses_dimensions_and_suggestions() -> None:
    result = from_argilla(
        _flat(),
        question="preference",
        dimension_questions={"accuracy": "accuracy"},
        justification_question="why",
        model_a_field="model_a",
        model_b_field="model_b",
    )
    assert_valid(result)
    items = {(i["pair_id"], i["annotator"]): i for i in result.items}
    assert sorted(items) == [("rec-001", U + "1"), ("rec-001", U + "2"), ("rec-002", U + "2")]
    first = items[("rec-001", U + "1")]
    assert first["choice"] == "a"
    assert first["dimensions"] == {"accuracy": "a"}
    assert first["justification"] == "12 is divisible by 2 and 3."
    assert first["ai_choice"] == "a"
    assert (first["model_a"], first["model_b"]) == ("sft-v3", "sft-v4")
    assert (first["response_a"], first["response_b"]) == ("11 is prime.", "12 is prime.")
    assert first["shown_first"] is None
    assert first["started_at"] is None
    assert items[("rec-001", U + "2")]["choice"] == "tie"
    assert items[("rec-001", U + "2")]["dimensions"] == {"accuracy": "tie"}
    assert items[("rec-001", U + "2")]["justification"] is None
    assert items[("rec-002", U + "2")]["choice"] == "b"
    assert "ai_choice" not in items[("rec-002", U + "2")]
    # rec-003 has no responses, so its prompt is not part of the set
    assert [p["text"] for p in result.prompts] == [
        "Name a prime number greater than 10.",
        "Translate 'good morning' into French.",
    ]
    assert result.batch_meta["ai_assisted"] is True
    assert result.batch_meta["ai_model"] == "gpt-4o-judge"
    assert result.batch_meta["tool"] == "argilla"
    assert result.batch_meta["collected_from"] is None
    assert "skipped 1 discarded response(s)" in result.losses
    assert "skipped 1 draft response(s)" in result.losses
    losses = "\n".join(result.losses)
    assert "no response timestamps" in losses
    assert "nested record form" not in losses


def test_nested_form_with_chat_prompt_and_ranking_question() -> None:
    result = from_argilla(
        _nested(), question="ranking", model_a_field="model_a", model_b_field="model_b", shown_first="a"
    )
    assert_valid(result)
    items = {(i["pair_id"], i["annotator"]): i for i in result.items}
    assert sorted(items) == [("conv-1", V + "0"), ("conv-1", V + "1"), ("conv-2", V + "0")]
    assert items[("conv-1", V + "0")]["choice"] == "a"  # ranked response1 first
    assert items[("conv-1", V + "1")]["choice"] == "b"
    assert items[("conv-1", V + "0")]["ai_choice"] == "b"
    assert items[("conv-1", V + "0")]["model_a"] == "chat-v1"  # from metadata
    assert items[("conv-2", V + "0")]["response_a"] == "No, it is an oblate spheroid."  # one assistant message
    assert {i["shown_first"] for i in result.items} == {"a"}
    chat = next(p for p in result.prompts if p["turns"] == 2)
    assert [m["role"] for m in json.loads(chat["text"])] == ["user", "assistant", "user"]
    assert result.batch_meta["ai_model"] == "ranker-v2"
    losses = "\n".join(result.losses)
    assert "nested record form (Record.to_dict) carries no response status" in losses
    assert "shown_first is null" not in losses


def test_rating_values_dict_rankings_and_custom_labels() -> None:
    def record(rid: str, question: str, answers: list[tuple[Any, str]]) -> dict[str, Any]:
        return {
            "id": rid,
            "fields": {"prompt": f"prompt {rid}", "r1": "one", "r2": "two"},
            "metadata": {},
            "suggestions": {},
            "responses": {question: [{"value": value, "user_id": user} for value, user in answers]},
        }

    rated = from_argilla(
        [record("x", "score", [(1, "u1"), (2, "u2"), (3, "u3"), (4, "u4")])],
        question="score",
        prompt_field="prompt",
        response_a_field="r1",
        response_b_field="r2",
    )
    assert_valid(rated)
    assert [i["choice"] for i in rated.items] == ["a", "b", "tie"]
    assert "skipped 1 response(s) with no value that maps to a/b/tie" in rated.losses
    assert any("4 x1" in note for note in rated.losses)

    ranked = from_argilla(
        [record("y", "rank", [([{"value": "r1", "rank": 1}, {"value": "r2", "rank": 1}], "u1")])],
        question="rank",
        prompt_field="prompt",
        response_a_field="r1",
        response_b_field="r2",
    )
    assert [i["choice"] for i in ranked.items] == ["tie"]

    labelled = from_argilla(
        [record("z", "pref", [("Left is better", "u1"), ("Same", "u2")])],
        question="pref",
        prompt_field="prompt",
        response_a_field="r1",
        response_b_field="r2",
        values={"Left is better": "a", "Right is better": "b", "Same": "tie"},
    )
    assert [i["choice"] for i in labelled.items] == ["a", "tie"]


def test_flat_columns_of_unequal_length_are_refused() -> None:
    broken = _flat()[0] | {"preference.responses.users": ["only-one"]}
    with pytest.raises(ImportFormatError):
        from_argilla([broken])


def test_missing_field_is_refused() -> None:
    with pytest.raises(ImportFormatError):
        from_argilla(_nested(), question="ranking", prompt_field="prompt")


def _for_ranking_record(rid: str, rankings: list[tuple[Any, str]], flat: bool) -> dict[str, Any]:
    """A record of a dataset made with `rg.Settings.for_ranking()`: fields instruction, response1 and
    response2, and the RankingQuestion `ranking` over response1 and response2."""
    fields = {"instruction": f"Question {rid}?", "response1": f"first answer {rid}", "response2": f"second {rid}"}
    if not flat:
        responses = [{"value": value, "user_id": user} for value, user in rankings]
        return {"id": rid, "fields": fields, "metadata": {}, "responses": {"ranking": responses}, "suggestions": {}}
    return {
        "id": rid,
        "status": "completed",
        **fields,
        "ranking.responses": [value for value, _ in rankings],
        "ranking.responses.users": [user for _, user in rankings],
        "ranking.responses.status": ["submitted"] * len(rankings),
    }


@pytest.mark.parametrize("flat", [True, False], ids=["flat", "nested"])
def test_for_ranking_layout_is_read_without_naming_the_question(flat: bool) -> None:
    by_rank = [{"value": "response2", "rank": 1}, {"value": "response1", "rank": 2}]
    records = [
        _for_ranking_record("r1", [(["response1", "response2"], "u1"), (by_rank, "u2")], flat),
        _for_ranking_record("r2", [(["response2", "response1"], "u1")], flat),
    ]
    result = from_argilla(records)
    assert_valid(result)
    choices = {(i["pair_id"], i["annotator"]): i["choice"] for i in result.items}
    assert choices == {("r1", "u1"): "a", ("r1", "u2"): "b", ("r2", "u1"): "b"}
    assert {p["text"] for p in result.prompts} == {"Question r1?", "Question r2?"}
    assert result.items[0]["response_a"] == "first answer r1"


def test_a_preference_question_wins_over_ranking_and_an_unknown_one_is_named() -> None:
    both = _nested()[0] | {"responses": {"preference": [{"value": "A", "user_id": "u1"}], "ranking": []}}
    assert [i["choice"] for i in from_argilla([both]).items] == ["a"]
    other = _for_ranking_record("r1", [(["response1", "response2"], "u1")], flat=True)
    renamed = {key.replace("ranking.", "order."): value for key, value in other.items()}
    with pytest.raises(ImportFormatError, match="order"):
        from_argilla([renamed])
    assert [i["choice"] for i in from_argilla([renamed], question="order").items] == ["a"]
