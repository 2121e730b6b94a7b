"""Blinded task exports and the judgments that come back: for each format, the export as the tool loads
it, annotations scripted in the tool's own export layout, and `parse_judgments` reading them back with
Response A always the left response. No export carries a model's identity or the left/right mapping."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from app.core.errors import ValidationFailed
from app.evaluations.formats import FORMATS, LABEL_STUDIO_CONFIG, Format, export_tasks, parse_judgments
from app.evaluations.tasks import Prompt, build_tasks, comparisons, task_id_of

REFERENCE = "0190a000-0000-7000-8000-00000000base"
CHECKPOINTS = ["0190a000-0000-7000-8000-0000000step1", "0190a000-0000-7000-8000-0000000step2"]
# what a task knows that an evaluator must not: the models, which side is whose, how the pair was made
IDENTITIES = [REFERENCE, *CHECKPOINTS, "left_model", "right_model", "response_left", "comparison", "step", "source"]
PROMPTS = [Prompt(f"q{n}", f"Question {n}: how does this work?", "usage" if n % 3 else "adversarial") for n in range(6)]


def _tasks(seed: int = 0, pairing: Any = "reference") -> list[dict[str, Any]]:
    models = [REFERENCE, *CHECKPOINTS]
    responses = {(p.id, m): f"answer {k} to {p.id}" for p in PROMPTS for k, m in enumerate(models)}
    return build_tasks(PROMPTS, responses, comparisons(REFERENCE, CHECKPOINTS, pairing), seed)


def test_tasks_are_drawn_from_the_seed() -> None:
    tasks = _tasks()
    assert len(tasks) == len(PROMPTS) * len(CHECKPOINTS)
    assert len(_tasks(pairing="all")) == len(PROMPTS) * 3
    assert _tasks() == tasks
    assert [t["task_id"] for t in tasks] == sorted(t["task_id"] for t in tasks)
    for task in tasks:
        pair = (task["left_model"], task["right_model"])
        assert (
            task["task_id"] == task_id_of(0, task["prompt_id"], *pair) == task_id_of(0, task["prompt_id"], *pair[::-1])
        )
        assert re.fullmatch(r"t-[0-9a-f]{12}", task["task_id"])
        assert task["response_left"] == f"answer {[REFERENCE, *CHECKPOINTS].index(pair[0])} to {task['prompt_id']}"
    # the order is drawn: both sides hold the reference somewhere, and another seed draws other ids
    assert {t["left_model"] == REFERENCE for t in tasks} == {True, False}
    assert not {t["task_id"] for t in tasks} & {t["task_id"] for t in _tasks(seed=1)}


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_export_carries_no_identity(fmt: Format) -> None:
    data = export_tasks(_tasks(), fmt).decode()
    for secret in IDENTITIES:
        assert secret not in data
    # nor the mapping: the prompt id (shared by a prompt's tasks) is not there either
    assert not re.search(r'"q\d"', data)


def _blinded(fmt: Format, data: bytes) -> list[dict[str, str]]:
    if fmt == "jsonl":
        return [json.loads(line) for line in data.decode().splitlines()]
    rows = json.loads(data)
    if fmt == "label-studio":
        return [row["data"] for row in rows]
    return [{"task_id": row["id"], **row["fields"]} for row in rows]


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_export_shows_response_a_on_the_left(fmt: Format) -> None:
    tasks = _tasks()
    shown = _blinded(fmt, export_tasks(tasks, fmt))
    assert [set(row) for row in shown] == [{"task_id", "prompt", "response_a", "response_b"}] * len(tasks)
    assert shown == [
        {
            "task_id": t["task_id"],
            "prompt": t["prompt"],
            "response_a": t["response_left"],
            "response_b": t["response_right"],
        }
        for t in tasks
    ]


def test_jsonl_judgments_round_trip() -> None:
    tasks = _tasks()
    rows = [
        {
            "task_id": tasks[0]["task_id"],
            "evaluator": "alice",
            "choice": "a",
            "submitted_at": "2026-11-16T10:00:00+01:00",
        },
        {"task_id": tasks[0]["task_id"], "evaluator": "bob", "choice": "tie", "submitted_at": None},
        {"task_id": tasks[1]["task_id"], "evaluator": "alice", "choice": "b"},
    ]
    data = "\n".join(json.dumps(r) for r in rows).encode() + b"\n\n"
    assert parse_judgments(data, "jsonl") == [
        {"task_id": tasks[0]["task_id"], "evaluator": "alice", "choice": "a", "submitted_at": "2026-11-16T09:00:00Z"},
        {"task_id": tasks[0]["task_id"], "evaluator": "bob", "choice": "tie", "submitted_at": None},
        {"task_id": tasks[1]["task_id"], "evaluator": "alice", "choice": "b", "submitted_at": None},
    ]


def _ls_annotation(user: int, region: dict[str, Any], *, cancelled: bool = False) -> dict[str, Any]:
    return {
        "id": 1000 + user,
        "completed_by": {"id": user, "email": f"rater-{user}@lab.example", "first_name": "", "last_name": ""},
        "result": [] if cancelled else [{"id": f"r{user}", "to_name": "prompt", "origin": "manual", **region}],
        "was_cancelled": cancelled,
        "ground_truth": False,
        "created_at": "2026-11-20T14:05:00.123456Z",
        "updated_at": "2026-11-20T14:05:00.123456Z",
        "lead_time": 42.5,
        "task": 0,
    }


def _choice(label: str) -> dict[str, Any]:
    return {"from_name": "preference", "type": "choices", "value": {"choices": [label]}}


def test_label_studio_round_trip() -> None:
    """Label Studio adds its own task id, the annotations and the predictions to every task it exports."""
    tasks = _tasks()
    exported = json.loads(export_tasks(tasks, "label-studio"))
    annotated = []
    for number, task in enumerate(exported):
        annotations = [_ls_annotation(7, _choice("A" if number % 2 else "B"))]
        if number == 0:
            annotations += [_ls_annotation(8, _choice("Tie")), _ls_annotation(9, {}, cancelled=True)]
        if number == 1:  # the Pairwise tag instead of Choices: left is Response A
            pairwise = {"from_name": "pairwise", "type": "pairwise", "value": {"selected": "right"}}
            annotations = [_ls_annotation(8, pairwise)]
        annotated.append({"id": 500 + number, **task, "annotations": annotations, "predictions": []})
    judgments = parse_judgments(json.dumps(annotated).encode(), "label-studio")
    by_key = {(j["task_id"], j["evaluator"]): j for j in judgments}
    assert len(judgments) == len(tasks) + 1  # the cancelled annotation is none
    first, second = tasks[0]["task_id"], tasks[1]["task_id"]
    assert by_key[(first, "rater-7@lab.example")]["choice"] == "b"
    assert by_key[(first, "rater-8@lab.example")]["choice"] == "tie"
    assert by_key[(second, "rater-8@lab.example")]["choice"] == "b"
    assert by_key[(tasks[3]["task_id"], "rater-7@lab.example")] == {
        "task_id": tasks[3]["task_id"],
        "evaluator": "rater-7@lab.example",
        "choice": "a",
        "submitted_at": "2026-11-20T14:05:00Z",
    }


def test_the_label_studio_config_names_the_exported_fields_and_labels() -> None:
    data = json.loads(export_tasks(_tasks(), "label-studio"))[0]["data"]
    assert set(re.findall(r'value="\$(\w+)"', LABEL_STUDIO_CONFIG)) == set(data) - {"task_id"}
    labels = re.findall(r'<Choice value="(\w+)"/>', LABEL_STUDIO_CONFIG)
    choices = []
    for label in labels:
        task = {"id": 1, "data": data, "annotations": [_ls_annotation(7, _choice(label))]}
        [judgment] = parse_judgments(json.dumps([task]).encode(), "label-studio")
        choices.append(judgment["choice"])
    assert choices == ["a", "b", "tie"]


def test_argilla_round_trip_in_both_record_forms() -> None:
    """`dataset.records.to_json` writes the nested form; `to_datasets().to_json` flat JSON lines."""
    tasks = _tasks()
    exported = json.loads(export_tasks(tasks, "argilla"))
    users = ["6f1c0b2e-1111-4a55-9d1e-0a6b0c9f1001", "6f1c0b2e-1111-4a55-9d1e-0a6b0c9f1002"]
    nested = [
        {
            **record,
            "metadata": {},
            "suggestions": {},
            "responses": {"preference": [{"value": "A", "user_id": users[0]}, {"value": "tie", "user_id": users[1]}]},
            "vectors": {},
            "_server_id": f"5f0c9a9e-7a3b-4c55-9d1e-0a6b0c9f{n:04d}",
        }
        for n, record in enumerate(exported)
    ]
    judgments = parse_judgments(json.dumps(nested).encode(), "argilla")
    assert len(judgments) == 2 * len(tasks)
    assert judgments[:2] == [
        {"task_id": tasks[0]["task_id"], "evaluator": users[0], "choice": "a", "submitted_at": None},
        {"task_id": tasks[0]["task_id"], "evaluator": users[1], "choice": "tie", "submitted_at": None},
    ]

    flat = [
        {
            "id": record["id"],
            "status": "completed",
            **record["fields"],
            "preference.responses": ["B", "A"],
            "preference.responses.users": users,
            "preference.responses.status": ["submitted", "draft"],
        }
        for record in exported
    ]
    judgments = parse_judgments("".join(json.dumps(r) + "\n" for r in flat).encode(), "argilla")
    assert [(j["evaluator"], j["choice"]) for j in judgments] == [(users[0], "b")] * len(tasks)  # no draft


def _refusal(data: bytes, fmt: Format) -> list[dict[str, Any]]:
    with pytest.raises(ValidationFailed) as caught:
        parse_judgments(data, fmt)
    assert caught.value.code == "validation_failed"
    return caught.value.errors or []


def test_bad_judgments_are_refused_by_row() -> None:
    good = {"task_id": "t-000000000001", "evaluator": "alice", "choice": "a"}
    rows = [good, {**good, "choice": "left"}, {**good, "evaluator": "bob", "model": "x"}, good]
    errors = _refusal("".join(json.dumps(r) + "\n" for r in rows).encode(), "jsonl")
    assert [e["loc"] for e in errors] == [["spec", "evidence_blob", n] for n in (1, 2, 3)]
    assert "choice" in errors[0]["msg"] and "model" in errors[1]["msg"] and "again (row 0)" in errors[2]["msg"]
    assert _refusal(b'{"task_id": \n', "jsonl")[0]["loc"] == ["spec", "evidence_blob", 0]
    assert _refusal(b"\xff\xfe", "jsonl")[0]["loc"] == ["spec", "evidence_blob"]


def test_tool_exports_that_lost_the_task_ids_are_refused_by_row() -> None:
    tasks = _tasks()
    exported = json.loads(export_tasks(tasks, "label-studio"))
    del exported[1]["data"]["task_id"]
    errors = _refusal(json.dumps(exported).encode(), "label-studio")
    assert [e["loc"] for e in errors] == [["spec", "evidence_blob", 1]]
    records = json.loads(export_tasks(tasks, "argilla"))
    records[2]["id"] = None
    assert [e["loc"] for e in _refusal(json.dumps(records).encode(), "argilla")] == [["spec", "evidence_blob", 2]]
    assert _refusal(b"[{", "label-studio")[0]["loc"] == ["spec", "evidence_blob"]
