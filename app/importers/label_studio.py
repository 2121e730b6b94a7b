"""Label Studio JSON export -> prompt-set prompts and annotation-batch items."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from app.importers.conversation import prompt_text, response_text
from app.importers.spec import (
    Choice,
    ImportFormatError,
    ImportResult,
    PromptSource,
    Slot,
    SpecBuilder,
    parse_timestamp,
)

# Matched case-insensitively against a <Choices> label; the caller's mapping replaces this one.
DEFAULT_CHOICE_LABELS: Mapping[str, Choice] = {"A": "a", "B": "b", "Tie": "tie", "Equal": "tie"}
_PAIRWISE: Mapping[str, Choice] = {"left": "a", "right": "b"}


@dataclass
class _Judgement:
    choice: Choice | None = None
    dimensions: dict[str, Choice] = field(default_factory=dict)
    justification: str | None = None
    unmapped: list[str] = field(default_factory=list)
    used_pairwise: bool = False


def from_label_studio(
    export: Sequence[Mapping[str, Any]] | Mapping[str, Any],
    *,
    prompt_field: str = "prompt",
    response_a_field: str = "answer1",
    response_b_field: str = "answer2",
    model_a_field: str | None = None,
    model_b_field: str | None = None,
    prompt_id_field: str | None = None,
    choice_from_name: str | None = None,
    choice_labels: Mapping[str, Choice] | None = None,
    dimension_from_names: Mapping[str, str] | None = None,
    justification_from_name: str | None = None,
    shown_first: Slot | None = "a",
    annotator_key: Literal["id", "email"] = "id",
    annotator_pool: str = "label-studio",
    source: PromptSource = "usage",
    privacy_reviewed: bool = False,
    complexity: str | None = None,
) -> ImportResult:
    """Read a Label Studio "JSON" export of a pairwise-preference project.

    Shape (https://labelstud.io/guide/export#Label-Studio-JSON-format-of-annotated-tasks and
    https://labelstud.io/guide/task_format): a list of tasks `{"id", "data": {...}, "annotations": [...],
    "predictions": [...]}`, or one such task object on its own (an export of a single task); each
    annotation has `result` (a list of `{"from_name", "to_name", "type", "value"}`), `completed_by` (a
    user id, or `{"id", "email", ...}` when the export expands users), `created_at`, `updated_at`,
    `lead_time` (seconds), `was_cancelled` and `ground_truth`.

    The preference comes from either
    - a `<Pairwise>` tag (https://labelstud.io/tags/pairwise): `{"type": "pairwise", "value":
      {"selected": "left" | "right"}}`, left being the first name of `toName`, i.e. `response_a_field`
      in the "Human Preferences collection for RLHF" template
      (https://labelstud.io/templates/generative-pairwise-human-preference: `$prompt`, `$answer1`,
      `$answer2`); or
    - a `<Choices>` tag (https://labelstud.io/tags/choices): `{"type": "choices", "value": {"choices":
      ["A"]}}`, its label mapped by `choice_labels` (case-insensitive).

    Without `choice_from_name`, the first pairwise result, else the first mappable choices result, that
    is not a dimension is the overall choice. `dimension_from_names` maps further Pairwise/Choices tag
    names to criteria dimensions; the `<TextArea>` named `justification_from_name` (or the first one)
    gives the justification. Cancelled (skipped) annotations are left out. An annotation marked
    `ground_truth` sets `gold` on every item of its task. Predictions with a choice become `ai_choice`
    (pre-annotations are shown to annotators, so the batch is AI-assisted, by `model_version`).
    `started_at` is `created_at - lead_time`, `submitted_at` is `created_at` (else `updated_at`).
    """
    tasks = _tasks(export)
    labels = {key.casefold(): value for key, value in (choice_labels or DEFAULT_CHOICE_LABELS).items()}
    dims = dict(dimension_from_names or {})
    builder = SpecBuilder(
        tool="label-studio",
        annotator_pool=annotator_pool,
        source=source,
        privacy_reviewed=privacy_reviewed,
        complexity=complexity,
    )
    unmapped: Counter[str] = Counter()
    used_pairwise = False
    naive = 0
    for task in tasks:
        data = task.get("data")
        if not isinstance(data, Mapping):
            raise ImportFormatError("a Label Studio task has no `data` object")
        for name in (prompt_field, response_a_field, response_b_field):
            if name not in data:
                raise ImportFormatError(f"task {task.get('id')!r} has no data field {name!r}")
        text, turns = prompt_text(data[prompt_field], f"data.{prompt_field}")
        own_id = data.get(prompt_id_field) if prompt_id_field else None
        prompt_id = builder.prompt(text, prompt_id=None if own_id is None else str(own_id), turns=turns)
        response_a = response_text(data[response_a_field], f"data.{response_a_field}")
        response_b = response_text(data[response_b_field], f"data.{response_b_field}")
        if task.get("id") is not None:
            pair_id = f"ls-{task['id']}"
        else:
            pair_id = "ls-" + hashlib.sha256(f"{text}\0{response_a}\0{response_b}".encode()).hexdigest()[:16]
        ai_choice, ai_model = _prediction(task, labels, dims, choice_from_name, justification_from_name)
        if ai_choice is not None:
            builder.assisted_by(ai_model)
        annotations = [a for a in task.get("annotations") or [] if isinstance(a, Mapping)]
        cancelled = [a for a in annotations if a.get("was_cancelled")]
        if cancelled:
            builder.skip("cancelled (skipped) annotation(s)", len(cancelled))
        judged: list[tuple[Mapping[str, Any], _Judgement, Choice]] = []
        for annotation in annotations:
            if annotation.get("was_cancelled"):
                continue
            result = annotation.get("result") or []
            judgement = _judgement(result, labels, dims, choice_from_name, justification_from_name)
            unmapped.update(judgement.unmapped)
            used_pairwise = used_pairwise or judgement.used_pairwise
            if judgement.choice is None:
                builder.skip("annotation(s) with no preference result")
                continue
            judged.append((annotation, judgement, judgement.choice))
        gold = next((choice for a, _, choice in judged if a.get("ground_truth")), None)
        for annotation, judgement, choice in judged:
            created, naive_created = parse_timestamp(annotation.get("created_at"))
            updated, naive_updated = parse_timestamp(annotation.get("updated_at"))
            naive += naive_created + naive_updated
            lead_time = annotation.get("lead_time")
            started = None
            if created is not None and isinstance(lead_time, int | float) and lead_time >= 0:
                started = created - timedelta(seconds=float(lead_time))
            builder.item(
                pair_id=pair_id,
                prompt_id=prompt_id,
                response_a=response_a,
                response_b=response_b,
                model_a=_optional_text(data, model_a_field),
                model_b=_optional_text(data, model_b_field),
                shown_first=shown_first,
                annotator=_annotator(annotation.get("completed_by"), annotator_key, builder),
                choice=choice,
                justification=judgement.justification,
                dimensions=judgement.dimensions,
                started_at=started,
                submitted_at=_first(created, updated),
                gold=gold,
                ai_choice=ai_choice,
            )
    if used_pairwise:
        builder.lose("Label Studio's Pairwise tag has no tie option: ties cannot occur in Pairwise choices")
    if unmapped:
        listed = ", ".join(f"{label!r} x{count}" for label, count in sorted(unmapped.items()))
        builder.lose(f"choice labels with no mapping to a/b/tie were ignored: {listed}")
    if naive:
        builder.lose(f"{naive} timestamp(s) had no time zone and were taken as UTC")
    builder.lose("Label Studio records no annotation session: session_id is null")
    builder.lose(
        "lead_time is the total editing time of an annotation, so started_at = created_at - lead_time "
        "is an estimate when an annotation was reopened"
    )
    if shown_first is not None:
        builder.lose(
            f"display order is not recorded per annotation: shown_first={shown_first!r} comes from the "
            "labeling config (the first toName object / left side)"
        )
    else:
        builder.lose("display order unknown: shown_first is null")
    if model_a_field is None or model_b_field is None:
        builder.lose("the export names no source models: model_a and model_b are null")
    if any(isinstance(task.get("predictions"), list) and task["predictions"] for task in tasks):
        builder.lose(
            "whether predictions were shown as pre-annotations is a project setting the export omits: assumed shown"
        )
    return builder.build()


def _tasks(export: Sequence[Mapping[str, Any]] | Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The tasks of an export: a list of task objects, or a single task object."""
    if isinstance(export, Mapping):
        return [export]
    if isinstance(export, str | bytes) or not isinstance(export, Sequence):
        raise ImportFormatError(f"a Label Studio export is a list of tasks or one task, not {type(export).__name__}")
    tasks = []
    for position, task in enumerate(export):
        if not isinstance(task, Mapping):
            raise ImportFormatError(f"task {position} is a {type(task).__name__}, not an object")
        tasks.append(task)
    return tasks


def _judgement(
    result: Sequence[Any],
    labels: Mapping[str, Choice],
    dims: Mapping[str, str],
    choice_from_name: str | None,
    justification_from_name: str | None,
) -> _Judgement:
    judgement = _Judgement()
    candidates: list[tuple[int, Choice]] = []  # (0 pairwise / 1 choices, value), in result order
    for region in result:
        if not isinstance(region, Mapping):
            continue
        kind, name, value = region.get("type"), region.get("from_name"), region.get("value")
        if not isinstance(value, Mapping):
            continue
        if kind == "textarea":
            if judgement.justification is None and justification_from_name in (None, name):
                texts = value.get("text") or []
                judgement.justification = "\n".join(str(t) for t in texts) or None
            continue
        if kind not in ("pairwise", "choices"):
            continue
        is_dimension = isinstance(name, str) and name in dims and name != choice_from_name
        if not is_dimension and choice_from_name not in (None, name):
            continue
        judgement.used_pairwise = judgement.used_pairwise or kind == "pairwise"
        mapped = _region_choice(kind, value, labels, judgement.unmapped)
        if mapped is None:
            continue
        if is_dimension:
            judgement.dimensions[dims[str(name)]] = mapped
        else:
            candidates.append((0 if kind == "pairwise" else 1, mapped))
    if candidates:
        judgement.choice = min(candidates, key=lambda c: c[0])[1]
    return judgement


def _region_choice(
    kind: object, value: Mapping[str, Any], labels: Mapping[str, Choice], unmapped: list[str]
) -> Choice | None:
    if kind == "pairwise":
        return _PAIRWISE.get(str(value.get("selected")))
    chosen = value.get("choices")
    if not isinstance(chosen, list) or len(chosen) != 1:
        unmapped.append(str(chosen))
        return None
    label = str(chosen[0])
    mapped = labels.get(label.casefold())
    if mapped is None:
        unmapped.append(label)
    return mapped


def _prediction(
    task: Mapping[str, Any],
    labels: Mapping[str, Choice],
    dims: Mapping[str, str],
    choice_from_name: str | None,
    justification_from_name: str | None,
) -> tuple[Choice | None, str | None]:
    for prediction in task.get("predictions") or []:
        if not isinstance(prediction, Mapping):
            continue
        judgement = _judgement(prediction.get("result") or [], labels, dims, choice_from_name, justification_from_name)
        if judgement.choice is not None:
            model = prediction.get("model_version")
            return judgement.choice, None if model is None else str(model)
    return None, None


def _annotator(completed_by: object, key: str, builder: SpecBuilder) -> str:
    if isinstance(completed_by, Mapping):
        if key == "email" and completed_by.get("email"):
            return str(completed_by["email"])
        completed_by = completed_by.get("id")
    if isinstance(completed_by, int | str) and not isinstance(completed_by, bool):
        if key == "email":
            builder.lose("some annotations carry only a user id, not an email: used ls-user-<id> for them")
        return f"ls-user-{completed_by}"
    raise ImportFormatError(f"completed_by must be a user id or a user object, got {completed_by!r}")


def _optional_text(data: Mapping[str, Any], name: str | None) -> str | None:
    if name is None or data.get(name) is None:
        return None
    return str(data[name])


def _first(*moments: datetime | None) -> datetime | None:
    return next((m for m in moments if m is not None), None)
