"""Argilla 2.x record exports -> prompt-set prompts and annotation-batch items."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from app.importers.conversation import prompt_text, response_text
from app.importers.spec import Choice, ImportFormatError, ImportResult, PromptSource, Slot, SpecBuilder

# LabelQuestion labels (matched case-insensitively) and RatingQuestion values. For a RankingQuestion
# the two response field names are added, so a ranking over ["response1", "response2"] maps too.
# The preference question looked for when none is named: `preference`, else `ranking`, the
# RankingQuestion of `rg.Settings.for_ranking()` (fields instruction, response1, response2).
QUESTIONS = ("preference", "ranking")
DEFAULT_VALUES: Mapping[str | int, Choice] = {"A": "a", "B": "b", "tie": "tie", 1: "a", 2: "b", 3: "tie"}
_ACCEPTED_STATUSES = (None, "submitted")


@dataclass
class _Response:
    user: str
    value: Any
    status: str | None


@dataclass
class _Record:
    id: str | None
    fields: dict[str, Any]
    metadata: dict[str, Any]
    responses: dict[str, list[_Response]] = field(default_factory=dict)
    suggestions: dict[str, tuple[Any, str | None]] = field(default_factory=dict)
    has_status: bool = False


def from_argilla(
    records: Iterable[Mapping[str, Any]],
    *,
    question: str | None = None,
    prompt_field: str = "instruction",
    response_a_field: str = "response1",
    response_b_field: str = "response2",
    model_a_field: str | None = None,
    model_b_field: str | None = None,
    prompt_id_field: str | None = None,
    values: Mapping[str | int, Choice] | None = None,
    dimension_questions: Mapping[str, str] | None = None,
    justification_question: str | None = None,
    shown_first: Slot | None = None,
    annotator_pool: str = "argilla",
    source: PromptSource = "usage",
    privacy_reviewed: bool = False,
    complexity: str | None = None,
) -> ImportResult:
    """Read Argilla 2.x records (https://docs.argilla.io/latest/how_to_guides/import_export/) in either form.

    - Flattened, as `dataset.records.to_list(flatten=True)`, `to_datasets()` and `Dataset.to_hub()` write
      them (argilla `records/_io/_generic.py`, `GenericIO._record_to_dict`): one flat dict per record
      with `id`, `status`, `_server_id`, the fields and metadata as columns, and per question
      `<q>.responses` (values), `<q>.responses.users` (user ids) and `<q>.responses.status`
      (`submitted` / `draft` / `discarded`), plus `<q>.suggestion`, `<q>.suggestion.agent`,
      `<q>.suggestion.score`.
    - Nested, as `Record.to_dict()` and `dataset.records.to_list(flatten=False)` write them
      (https://docs.argilla.io/latest/reference/argilla/records/records/): `{"id", "fields": {...},
      "metadata": {...}, "responses": {q: [{"value", "user_id"}]}, "suggestions": {q: {"value",
      "score", "agent"}}, "status", "_server_id"}`. This form drops the response status.

    The preference is the response to `question`: a LabelQuestion label, a RatingQuestion value, or a
    RankingQuestion ranking (a list of option names, best first, or of `{"value", "rank"}`), mapped by
    `values`. Without `question`, the records' `preference` question is used, else their `ranking`
    question: the layout `rg.Settings.for_ranking()` creates (a RankingQuestion `ranking` over the
    fields `response1` and `response2`, the prompt in `instruction`), which the default field names
    match. Draft and discarded responses are left out. `dimension_questions` maps further questions to
    criteria dimensions; the TextQuestion `justification_question` gives the justification. A
    suggestion for `question` becomes `ai_choice` (suggestions pre-fill the form, so the batch is
    AI-assisted, by the suggestion's `agent`). Prompt and responses may be TextFields or ChatFields.
    """
    records = list(records)
    if question is None:
        question = _preference_question(records)
    mapping: dict[str | int, Choice] = {}
    for key, mapped in (values or DEFAULT_VALUES).items():
        mapping[key.casefold() if isinstance(key, str) else key] = mapped
    mapping.setdefault(response_a_field.casefold(), "a")
    mapping.setdefault(response_b_field.casefold(), "b")
    dims = dict(dimension_questions or {})
    builder = SpecBuilder(
        tool="argilla",
        annotator_pool=annotator_pool,
        source=source,
        privacy_reviewed=privacy_reviewed,
        complexity=complexity,
    )
    unmapped: Counter[str] = Counter()
    nested_seen = False
    for raw in records:
        record = _normalise(raw, [question, *dims, *([justification_question] if justification_question else [])])
        nested_seen = nested_seen or not record.has_status
        for name in (prompt_field, response_a_field, response_b_field):
            if record.fields.get(name) is None:
                raise ImportFormatError(f"record {record.id!r} has no field {name!r}")
        text, turns = prompt_text(record.fields[prompt_field], prompt_field)
        own_id = _lookup(record, prompt_id_field)
        prompt_id = builder.prompt(text, prompt_id=own_id, turns=turns)
        response_a = response_text(record.fields[response_a_field], response_a_field)
        response_b = response_text(record.fields[response_b_field], response_b_field)
        pair_id = (
            record.id or "argilla-" + hashlib.sha256(f"{text}\0{response_a}\0{response_b}".encode()).hexdigest()[:16]
        )
        ai_choice: Choice | None = None
        if question in record.suggestions:
            suggested, agent = record.suggestions[question]
            ai_choice = _to_choice(suggested, mapping, unmapped)
            if ai_choice is not None:
                builder.assisted_by(agent)
        by_user = {q: {r.user: r for r in responses} for q, responses in record.responses.items()}
        for response in record.responses.get(question, []):
            if response.status not in _ACCEPTED_STATUSES:
                builder.skip(f"{response.status} response(s)")
                continue
            choice = _to_choice(response.value, mapping, unmapped)
            if choice is None:
                builder.skip("response(s) with no value that maps to a/b/tie")
                continue
            dimensions: dict[str, Choice] = {}
            for dim_question, dim_name in dims.items():
                answer = by_user.get(dim_question, {}).get(response.user)
                if answer is not None and answer.status in _ACCEPTED_STATUSES:
                    dim_choice = _to_choice(answer.value, mapping, unmapped)
                    if dim_choice is not None:
                        dimensions[dim_name] = dim_choice
            reason = by_user.get(justification_question or "", {}).get(response.user)
            builder.item(
                pair_id=pair_id,
                prompt_id=prompt_id,
                response_a=response_a,
                response_b=response_b,
                model_a=_lookup(record, model_a_field),
                model_b=_lookup(record, model_b_field),
                shown_first=shown_first,
                annotator=response.user,
                choice=choice,
                justification=None if reason is None or reason.value is None else str(reason.value),
                dimensions=dimensions,
                ai_choice=ai_choice,
            )
    if unmapped:
        listed = ", ".join(f"{value} x{count}" for value, count in sorted(unmapped.items()))
        builder.lose(f"response or suggestion values with no mapping to a/b/tie were ignored: {listed}")
    if nested_seen:
        builder.lose(
            "the nested record form (Record.to_dict) carries no response status: its responses were all "
            "taken as submitted"
        )
    builder.lose("Argilla exports no response timestamps or sessions: started_at, submitted_at, session_id are null")
    if shown_first is None:
        builder.lose("Argilla shows fields in the dataset settings' order, which the records omit: shown_first is null")
    if model_a_field is None or model_b_field is None:
        builder.lose("the records name no source models: model_a and model_b are null")
    return builder.build()


def _preference_question(records: list[Mapping[str, Any]]) -> str:
    """The first of `QUESTIONS` that the records answer; the first of them when none has answers yet."""
    answered: set[str] = set()
    for raw in records:
        nested = raw.get("responses")
        if isinstance(raw.get("fields"), Mapping) and isinstance(nested, Mapping):
            answered.update(str(name) for name, answers in nested.items() if answers)
        else:
            answered.update(
                key.removesuffix(".responses") for key, value in raw.items() if key.endswith(".responses") and value
            )
    for name in QUESTIONS:
        if name in answered:
            return name
    if answered:
        raise ImportFormatError(
            f"the records answer no question named {' or '.join(QUESTIONS)}; they answer "
            f"{', '.join(sorted(answered))}: name the preference question"
        )
    return QUESTIONS[0]


def _normalise(raw: Mapping[str, Any], questions: list[str]) -> _Record:
    """One record in either export form as fields, metadata, responses and suggestions."""
    record_id = raw.get("id")
    record_id = None if record_id is None else str(record_id)
    if isinstance(raw.get("fields"), Mapping) and isinstance(raw.get("responses", {}), Mapping):
        record = _Record(id=record_id, fields=dict(raw["fields"]), metadata=dict(raw.get("metadata") or {}))
        for name, answers in (raw.get("responses") or {}).items():
            record.responses[str(name)] = [
                _Response(user=_user(a.get("user_id")), value=a.get("value"), status=None)
                for a in answers or []
                if isinstance(a, Mapping)
            ]
        for name, suggestion in (raw.get("suggestions") or {}).items():
            if isinstance(suggestion, Mapping):
                agent = suggestion.get("agent")
                record.suggestions[str(name)] = (
                    suggestion.get("value"),
                    None if agent is None else str(agent),
                )
        return record
    flat = dict(raw)
    record = _Record(id=record_id, fields=flat, metadata=flat, has_status=True)
    for name in questions:
        answers = flat.get(f"{name}.responses") or []
        users = flat.get(f"{name}.responses.users") or []
        statuses = flat.get(f"{name}.responses.status") or [None] * len(answers)
        if not (len(answers) == len(users) == len(statuses)):
            raise ImportFormatError(f"record {record_id!r}: {name}.responses and its users/status differ in length")
        record.responses[name] = [
            _Response(user=_user(user), value=value, status=None if status is None else str(status))
            for value, user, status in zip(answers, users, statuses, strict=True)
        ]
        if flat.get(f"{name}.suggestion") is not None:
            agent = flat.get(f"{name}.suggestion.agent")
            record.suggestions[name] = (flat[f"{name}.suggestion"], None if agent is None else str(agent))
    return record


def _to_choice(value: Any, mapping: Mapping[str | int, Choice], unmapped: Counter[str]) -> Choice | None:
    if isinstance(value, list):
        return _ranking_choice(value, mapping, unmapped)
    key = value.casefold() if isinstance(value, str) else value
    if isinstance(key, str | int) and not isinstance(key, bool) and key in mapping:
        return mapping[key]
    unmapped[repr(value)] += 1
    return None


def _ranking_choice(ranking: list[Any], mapping: Mapping[str | int, Choice], unmapped: Counter[str]) -> Choice | None:
    """Best-first option names, or `{"value", "rank"}` objects (equal ranks are a tie)."""
    ranks: dict[Choice, float] = {}
    for position, entry in enumerate(ranking):
        name, rank = (
            (entry.get("value"), entry.get("rank", position)) if isinstance(entry, Mapping) else (entry, position)
        )
        slot = mapping.get(name.casefold()) if isinstance(name, str) else None
        if slot in ("a", "b") and slot not in ranks:
            ranks[slot] = float(rank if isinstance(rank, int | float) else position)
    if len(ranks) != 2:
        unmapped[repr(ranking)] += 1
        return None
    if ranks["a"] == ranks["b"]:
        return "tie"
    return "a" if ranks["a"] < ranks["b"] else "b"


def _lookup(record: _Record, name: str | None) -> str | None:
    if name is None:
        return None
    value = record.fields.get(name, record.metadata.get(name))
    return None if value is None else str(value)


def _user(value: object) -> str:
    if value is None or str(value) in ("", "None"):
        raise ImportFormatError("an Argilla response has no user id")
    return str(value)
