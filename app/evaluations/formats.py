"""What evaluators are shown (blinded task exports) and what comes back from them (judgments).

An export carries a task's id, its prompt and its two responses as Response A (the left one) and
Response B, nothing else: no model id, name or step, and not which side is which model, so neither the
file nor the tool's project can unblind the judgments. Three layouts:

- `jsonl`: one `{"task_id", "prompt", "response_a", "response_b"}` per line.
- `label-studio`: a JSON list of tasks `{"data": {"task_id", "prompt", "response_a", "response_b"}}`
  (https://labelstud.io/guide/task_format), imported into a project labelled with `LABEL_STUDIO_CONFIG`.
- `argilla`: a JSON list of records in the form `Record.from_dict` reads and `dataset.records.to_json`
  writes (https://docs.argilla.io/latest/reference/argilla/records/records/): the task id as the record
  id, the rest as the TextFields of `ARGILLA_FIELDS`, judged with the LabelQuestion `preference`.

Judgments come back as the tool's own export, read by the registry's importers (app.importers), and
are normalised to `{"task_id", "evaluator", "choice": "a" | "b" | "tie", "submitted_at"}`, where `a`
is Response A.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from app.core.errors import ValidationFailed
from app.importers import ImportFormatError, from_argilla, from_label_studio
from app.importers.spec import format_utc, parse_timestamp

Format = Literal["jsonl", "label-studio", "argilla"]
FORMATS: tuple[str, ...] = get_args(Format)
WHERE = ["spec", "evidence_blob"]
ARGILLA_FIELDS = ("prompt", "response_a", "response_b")
# The Label Studio project's labeling config: the task data keys above, and a single choice whose
# labels the Label Studio importer maps by default (A, B, Tie).
LABEL_STUDIO_CONFIG = """<View>
  <Header value="Prompt"/>
  <Text name="prompt" value="$prompt"/>
  <Header value="Response A"/>
  <Text name="response_a" value="$response_a"/>
  <Header value="Response B"/>
  <Text name="response_b" value="$response_b"/>
  <Choices name="preference" toName="prompt" choice="single" required="true">
    <Choice value="A"/>
    <Choice value="B"/>
    <Choice value="Tie"/>
  </Choices>
</View>
"""


class Judgment(BaseModel):
    """One evaluator's choice on one task, as a JSONL judgments file holds it."""

    model_config = ConfigDict(extra="forbid")

    task_id: str = Field(min_length=1)
    evaluator: str = Field(min_length=1)
    choice: Literal["a", "b", "tie"]
    submitted_at: str | None = None

    @field_validator("submitted_at")
    @classmethod
    def _utc(cls, value: str | None) -> str | None:
        try:
            return format_utc(parse_timestamp(value)[0])
        except ImportFormatError as exc:
            raise ValueError(str(exc)) from None


def blinded(task: Mapping[str, Any]) -> dict[str, str]:
    """What an evaluator sees of a task: its id, the prompt, Response A (left) and Response B (right)."""
    return {
        "task_id": task["task_id"],
        "prompt": task["prompt"],
        "response_a": task["response_left"],
        "response_b": task["response_right"],
    }


def export_tasks(tasks: Sequence[Mapping[str, Any]], fmt: Format) -> bytes:
    """The blinded tasks in the layout `fmt` loads into its tool (see the module docstring)."""
    shown = [blinded(task) for task in tasks]
    if fmt == "jsonl":
        return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in shown).encode()
    if fmt == "label-studio":
        layout: list[dict[str, Any]] = [{"data": row} for row in shown]
    else:
        layout = [
            {"id": row["task_id"], "fields": {name: row[name] for name in ARGILLA_FIELDS}, "metadata": {}}
            for row in shown
        ]
    return json.dumps(layout, ensure_ascii=False, indent=1).encode()


def parse_judgments(data: bytes, fmt: Format) -> list[dict[str, Any]]:
    """Normalised judgments from a JSONL judgments file or a Label Studio / Argilla export.

    Each row is read on its own so that a problem is located by row (`spec.evidence_blob.<row>`); a task
    judged twice by one evaluator is refused. Label Studio's cancelled annotations and Argilla's draft
    and discarded responses are not judgments and are left out, as the importers do."""
    rows = _rows(data, fmt)
    readers: dict[str, Callable[[Any], list[dict[str, Any]]]] = {
        "jsonl": _from_jsonl,
        "label-studio": _from_label_studio,
        "argilla": _from_argilla,
    }
    errors: list[dict[str, Any]] = []
    judgments: list[dict[str, Any]] = []
    first_row: dict[tuple[str, str], int] = {}
    for index, row in enumerate(rows):
        try:
            found = readers[fmt](row)
        except (ImportFormatError, ValueError) as exc:
            errors.append({"loc": [*WHERE, index], "msg": str(exc)[:300]})
            continue
        for judgment in found:
            key = (judgment["task_id"], judgment["evaluator"])
            if key in first_row:
                errors.append(
                    {"loc": [*WHERE, index], "msg": f"{key[1]} judged task {key[0]} again (row {first_row[key]})"}
                )
                continue
            first_row[key] = index
            judgments.append(judgment)
    if errors:
        raise ValidationFailed(f"the {fmt} judgments are not valid: {len(errors)} problem(s)", errors=errors[:100])
    return judgments


def _rows(data: bytes, fmt: Format) -> list[Any]:
    """The file's rows: JSON lines for `jsonl` and for Argilla's `to_datasets().to_json`; otherwise one
    JSON document, a list (Label Studio's JSON export, Argilla's `records.to_json`) or one task."""
    try:
        text = data.decode()
    except UnicodeDecodeError as exc:
        raise ValidationFailed("the judgments are not UTF-8 text", errors=[{"loc": WHERE, "msg": str(exc)}]) from None
    if fmt == "jsonl" or (fmt == "argilla" and not text.lstrip().startswith("[")):
        return _json_lines(text, fmt)
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        msg = f"not JSON: {exc.msg} at line {exc.lineno}"
        raise ValidationFailed(f"the {fmt} export is {msg}", errors=[{"loc": WHERE, "msg": msg}]) from None
    return parsed if isinstance(parsed, list) else [parsed]


def _json_lines(text: str, fmt: Format) -> list[Any]:
    """One row per non-blank line; rows are numbered from 0 without the blank lines."""
    lines = [line for line in text.splitlines() if line.strip()]
    rows: list[Any] = []
    errors: list[dict[str, Any]] = []
    for index, line in enumerate(lines):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            errors.append({"loc": [*WHERE, index], "msg": f"not JSON: {exc.msg}"})
    if errors:
        raise ValidationFailed(
            f"the {fmt} judgments are not JSON lines: {len(errors)} bad line(s)", errors=errors[:100]
        )
    return rows


def _from_jsonl(row: Any) -> list[dict[str, Any]]:
    try:
        return [Judgment.model_validate(row).model_dump()]
    except ValidationError as exc:
        raise ValueError(
            "; ".join(f"{'.'.join(map(str, e['loc'])) or 'row'}: {e['msg']}" for e in exc.errors())
        ) from None


def _object(row: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(row, Mapping):
        raise ImportFormatError(f"a {what} is a JSON object, not {type(row).__name__}")
    return row


def _from_label_studio(row: Any) -> list[dict[str, Any]]:
    """One task of Label Studio's JSON export. The task id rides through the importer as the prompt id
    (the importer keys a task by Label Studio's own id); the evaluator is the annotator's email where
    the export expands users, else `ls-user-<id>`."""
    data = _object(row, "Label Studio task").get("data")
    if not isinstance(data, Mapping) or not isinstance(data.get("task_id"), str):
        raise ImportFormatError("the task has no data.task_id: import the tasks as the registry exported them")
    result = from_label_studio(
        [row],
        prompt_field="prompt",
        response_a_field="response_a",
        response_b_field="response_b",
        prompt_id_field="task_id",
        annotator_key="email",
    )
    return [_judgment(item["prompt_id"], item) for item in result.items]


def _from_argilla(row: Any) -> list[dict[str, Any]]:
    """One Argilla record, nested or flattened; the record id is the task id, the evaluator the
    responding user's id. The preference question is `preference` (a LabelQuestion A / B / tie), else
    `ranking` (a RankingQuestion over response_a and response_b)."""
    record = _object(row, "record")
    if not isinstance(record.get("id"), str):
        raise ImportFormatError("the record has no id: log the records with the ids the registry exported")
    prompt, response_a, response_b = ARGILLA_FIELDS
    result = from_argilla([record], prompt_field=prompt, response_a_field=response_a, response_b_field=response_b)
    return [_judgment(item["pair_id"], item) for item in result.items]


def _judgment(task_id: str, item: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "task_id": task_id,
        "evaluator": item["annotator"],
        "choice": item["choice"],
        "submitted_at": item["submitted_at"],
    }
