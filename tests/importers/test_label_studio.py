"""Label Studio JSON exports: the Pairwise template and the Choices variant."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.importers import ImportFormatError, from_label_studio, prompt_id_for
from tests.importers.spec_checks import FIXTURES, assert_valid


def _load(name: str) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    return tasks


def _by_key(items: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(i["pair_id"], i["annotator"]): i for i in items}


def test_pairwise_template_with_integer_users() -> None:
    result = from_label_studio(_load("label_studio_pairwise.json"), model_a_field="model1", model_b_field="model2")
    assert_valid(result)
    items = _by_key(result.items)
    assert sorted(items) == [
        ("ls-101", "ls-user-10"),
        ("ls-101", "ls-user-11"),
        ("ls-102", "ls-user-10"),
        ("ls-102", "ls-user-11"),
    ]
    first = items[("ls-101", "ls-user-10")]
    assert first["choice"] == "a"  # selected: left = answer1 = response_a
    assert first["response_a"].startswith("Preferences let a reward model")
    assert (first["model_a"], first["model_b"]) == ("sft-v3", "sft-v4")
    assert first["shown_first"] == "a"
    assert first["submitted_at"] == "2026-11-16T09:02:10Z"
    assert first["started_at"] == "2026-11-16T09:00:00Z"  # 09:02:10.51 - 130.5 s lead_time
    assert first["gold"] is None
    assert "ai_choice" not in first
    assert items[("ls-101", "ls-user-11")]["choice"] == "b"

    # the ground-truth annotation sets gold on every item of its task; the prediction is ai_choice
    gold_task = [items[("ls-102", "ls-user-10")], items[("ls-102", "ls-user-11")]]
    assert [i["choice"] for i in gold_task] == ["b", "a"]
    assert {i["gold"] for i in gold_task} == {"b"}
    assert {i["ai_choice"] for i in gold_task} == {"b"}

    # task 103 repeats task 101's prompt and has no usable annotation: one prompt per text
    assert [p["id"] for p in result.prompts] == [
        prompt_id_for("What are the key benefits of collecting human preferences for RLHF?"),
        prompt_id_for("Summarise the water cycle in one sentence."),
    ]
    assert all(p["source"] == "usage" and p["turns"] == 1 and p["topic"] is None for p in result.prompts)

    assert result.batch_meta == {
        "annotator_pool": "label-studio",
        "tool": "label-studio",
        "collected_from": "2026-11-16",
        "collected_to": "2026-11-18",
        "ai_assisted": True,
        "ai_model": "judge-v1",
    }
    assert "Label Studio's Pairwise tag has no tie option: ties cannot occur in Pairwise choices" in result.losses
    assert "skipped 1 cancelled (skipped) annotation(s)" in result.losses
    assert "skipped 1 annotation(s) with no preference result" in result.losses
    assert not any("model_a and model_b are null" in note for note in result.losses)


def test_choices_variant_with_user_objects_dimensions_and_justification() -> None:
    result = from_label_studio(
        _load("label_studio_choices.json"),
        dimension_from_names={"accuracy": "accuracy", "helpfulness": "helpfulness"},
        justification_from_name="why",
        source="expert",
        privacy_reviewed=True,
        complexity="low",
    )
    assert_valid(result)
    items = _by_key(result.items)
    assert sorted(items) == [
        ("ls-201", "ls-user-10"),
        ("ls-201", "ls-user-11"),
        ("ls-202", "ls-user-10"),
        ("ls-202", "ls-user-12"),
    ]
    rich = items[("ls-201", "ls-user-10")]
    assert rich["choice"] == "a"
    assert rich["dimensions"] == {"accuracy": "tie", "helpfulness": "a"}
    assert rich["justification"] == "A fits the audience.\nB is correct but too abstract."
    assert rich["submitted_at"] == "2026-11-16T09:02:00Z"  # 10:02 at +01:00
    assert rich["started_at"] == "2026-11-16T09:00:00Z"
    assert rich["model_a"] is None
    assert items[("ls-201", "ls-user-11")]["choice"] == "tie"
    assert items[("ls-201", "ls-user-11")]["dimensions"] == {}
    # the same user annotated task 202 twice: the later one (A) is kept
    assert items[("ls-202", "ls-user-10")]["choice"] == "a"
    # "Equal" is a tie label by default; no updated_at is fine
    assert items[("ls-202", "ls-user-12")]["choice"] == "tie"
    assert items[("ls-202", "ls-user-12")]["submitted_at"] == "2026-11-20T16:00:00Z"

    assert all(p["source"] == "expert" and p["privacy_reviewed"] and p["complexity"] == "low" for p in result.prompts)
    assert result.batch_meta["ai_assisted"] is False
    assert "ai_model" not in result.batch_meta
    assert (result.batch_meta["collected_from"], result.batch_meta["collected_to"]) == (
        "2026-11-16",
        "2026-11-20",
    )
    losses = "\n".join(result.losses)
    assert "skipped 1 cancelled (skipped) annotation(s)" in result.losses
    assert "1 repeated (pair_id, annotator) judgement(s)" in losses
    assert "'Both bad' x1" in losses
    assert "skipped 1 annotation(s) with no preference result" in result.losses
    assert "model_a and model_b are null" in losses
    assert "Pairwise" not in losses


def test_annotators_by_email_and_custom_labels() -> None:
    result = from_label_studio(
        _load("label_studio_choices.json"),
        choice_from_name="preference",
        choice_labels={"A": "a", "B": "b", "Tie": "tie", "Equal": "tie", "Both bad": "tie"},
        annotator_key="email",
    )
    assert_valid(result)
    items = _by_key(result.items)
    assert items[("ls-202", "ann-08@vendor-a.example")]["choice"] == "tie"
    # per-dimension tags are not the overall choice and are ignored without a mapping
    assert items[("ls-201", "ann-07@vendor-a.example")]["dimensions"] == {}
    assert not any("no preference result" in note for note in result.losses)


def test_unknown_display_order_is_reported() -> None:
    result = from_label_studio(_load("label_studio_pairwise.json"), shown_first=None)
    assert {i["shown_first"] for i in result.items} == {None}
    assert "display order unknown: shown_first is null" in result.losses


def test_missing_data_field_is_refused() -> None:
    with pytest.raises(ImportFormatError):
        from_label_studio(_load("label_studio_pairwise.json"), response_b_field="text2")


def test_chat_prompt_counts_user_turns() -> None:
    task = {
        "id": 1,
        "data": {
            "prompt": [
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello"},
                {"role": "user", "content": "Tell me a joke"},
            ],
            "answer1": "Why did the chicken cross the road?",
            "answer2": "No.",
        },
        "annotations": [
            {
                "completed_by": 3,
                "result": [{"type": "choices", "from_name": "p", "value": {"choices": ["A"]}}],
            }
        ],
    }
    result = from_label_studio([task])
    assert_valid(result)
    assert result.prompts[0]["turns"] == 2
    assert json.loads(result.prompts[0]["text"])[2]["content"] == "Tell me a joke"
    assert result.items[0]["started_at"] is None


def test_an_export_of_one_task_object_reads_like_a_list_of_one() -> None:
    task = _load("label_studio_pairwise.json")[0]
    single = from_label_studio(task, model_a_field="model1", model_b_field="model2")
    listed = from_label_studio([task], model_a_field="model1", model_b_field="model2")
    assert_valid(single)
    assert single.items and single == listed
    assert {i["pair_id"] for i in single.items} == {f"ls-{task['id']}"}


@pytest.mark.parametrize("export", ["not tasks", [["a list"]], 3])
def test_an_export_that_is_neither_tasks_nor_a_task_is_refused(export: Any) -> None:
    with pytest.raises(ImportFormatError):
        from_label_studio(export)
