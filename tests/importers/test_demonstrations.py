"""Demonstration files (TRL prompt-completion and messages JSONL) -> prompt set and demonstration set."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.importers import ImportFormatError, prompt_id_for
from app.importers.demonstrations import from_demonstrations_jsonl
from tests.conftest import World
from tests.factories import criteria_body

CHAT = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "What is the capital of France?"},
    {"role": "assistant", "content": "Paris."},
    {"role": "user", "content": "And of Italy?"},
]


def lines(rows: list[Any]) -> list[str]:
    return [json.dumps(row) + "\n" for row in rows] + ["\n"]


def test_prompt_completion_rows_become_prompts_and_demonstrations() -> None:
    result = from_demonstrations_jsonl(
        lines(
            [
                {"prompt": "Say hi.", "completion": "Hi!"},
                {"prompt": "Say hi.", "completion": "Hello there."},
                {"prompt": "Say hi.", "completion": "Hi!"},
                {"prompt": CHAT, "completion": [{"role": "assistant", "content": "Rome."}]},
            ]
        ),
        author="writer-1",
        source="synthetic",
        privacy_reviewed=True,
    )
    assert [p["text"] for p in result.prompts] == ["Say hi.", json.dumps(CHAT, ensure_ascii=False, sort_keys=True)]
    assert result.prompts[0] == {
        "id": prompt_id_for("Say hi."),
        "text": "Say hi.",
        "source": "synthetic",
        "turns": 1,
        "privacy_reviewed": True,
    }
    assert result.prompts[1]["turns"] == 2
    assert [d["response"] for d in result.demonstrations] == ["Hi!", "Hello there.", "Rome."]
    assert {d["author"] for d in result.demonstrations} == {"writer-1"}
    assert result.demonstrations[0]["prompt_id"] == prompt_id_for("Say hi.")
    assert any("1 repeated row" in loss for loss in result.losses)


def test_messages_rows_train_on_the_last_assistant_message() -> None:
    rows = [{"messages": [*CHAT, {"role": "assistant", "content": "Rome."}], "uid": "row-7"}]
    result = from_demonstrations_jsonl(lines(rows), fmt="messages", id_field="uid")
    [prompt] = result.prompts
    assert json.loads(prompt["text"]) == CHAT and prompt["turns"] == 2
    assert result.demonstrations == [{"id": "row-7", "prompt_id": prompt["id"], "response": "Rome.", "author": None}]
    assert any("1 earlier assistant turn" in loss for loss in result.losses)
    assert any("no author" in loss for loss in result.losses)


@pytest.mark.parametrize(
    ("fmt", "row", "words"),
    [
        ("messages", {"messages": CHAT}, "last message must be the assistant"),
        ("messages", {"messages": [{"role": "assistant", "content": "Hi"}]}, "no message comes before"),
        ("messages", {"text": "Hi"}, "no 'messages' list"),
        ("prompt-completion", {"prompt": "Hi"}, "no 'prompt' or 'completion'"),
        ("prompt-completion", {"prompt": "Hi", "completion": ""}, "empty prompt or response"),
        ("prompt-completion", {"prompt": 3, "completion": "x"}, "must be text or a list"),
        ("prompt-completion", [1, 2], "not a JSON object"),
        ("alpaca", {"instruction": "Hi"}, "unknown demonstration format"),
    ],
)
def test_rows_of_another_shape_are_refused(fmt: str, row: Any, words: str) -> None:
    with pytest.raises(ImportFormatError, match=words):
        from_demonstrations_jsonl(lines([row]), fmt=fmt)


def test_a_line_that_is_not_json_is_named() -> None:
    with pytest.raises(ImportFormatError, match="line 2 is not JSON"):
        from_demonstrations_jsonl(['{"prompt": "a", "completion": "b"}\n', "{nope\n"])


def test_an_import_registers_as_a_prompt_set_and_a_demonstration_set(world: World) -> None:
    project = world.project()
    annotator = world.member(project, "annotator")
    assert world.admin.post(f"/v1/projects/{project}/criteria", json=criteria_body()).status_code == 201
    result = from_demonstrations_jsonl(
        lines([{"prompt": f"Question {i}?", "completion": f"Answer {i}."} for i in range(5)]),
        source="expert",
    )
    prompt_set = annotator.post(
        f"/v1/projects/{project}/prompt-sets",
        json={
            "name": "written",
            "version": "1.0.0",
            "spec": {"sampling_procedure": "imported", "prompts": result.prompts},
        },
    )
    assert prompt_set.status_code == 201, prompt_set.text
    response = annotator.post(
        f"/v1/projects/{project}/demonstration-sets",
        json={
            "name": "written",
            "criteria": {"name": "assistant-quality", "version": "1.0.0"},
            "prompt_set": {"name": "written", "version": "1.0.0"},
            "spec": {"procedure": "imported", "demonstrations": result.demonstrations},
        },
    )
    assert response.status_code == 201, response.text
    assert response.json()["derived"]["count"] == 5
    assert response.json()["derived"]["coverage"]["source"] == {"expert": 5}
