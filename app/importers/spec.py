"""What every importer produces: prompt-set prompts, annotation-batch items, batch metadata and losses.

The field names and value sets are the registry's contract (`shared/API.md`, "Prompt set" and
"Annotation batch"). `SpecBuilder` is the one place that enforces them, so that each format module only
says how its source maps onto them: choices and per-dimension values in {a, b, tie}, every item's
`prompt_id` naming a prompt of the same result, `(pair_id, annotator)` unique (a repeat in the source
keeps the last and says so), timestamps as ISO 8601 UTC strings.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, cast, get_args

Choice = Literal["a", "b", "tie"]
Slot = Literal["a", "b"]
PromptSource = Literal["usage", "synthetic", "expert", "adversarial"]
Complexity = Literal["low", "medium", "high"]

CHOICES: frozenset[str] = frozenset(get_args(Choice))
PROMPT_SOURCES: frozenset[str] = frozenset(get_args(PromptSource))
COMPLEXITIES: frozenset[str] = frozenset(get_args(Complexity))


class ImportFormatError(ValueError):
    """The input does not have the documented shape of the format it was given as."""


def jsonl_row(line: str | Mapping[str, Any], number: int) -> Mapping[str, Any] | None:
    """One line of a JSONL export as an object (already-parsed rows pass through); None for a blank line."""
    if isinstance(line, Mapping):
        return line
    if not line.strip():
        return None
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise ImportFormatError(f"line {number} is not JSON: {exc.msg}") from exc
    if not isinstance(row, dict):
        raise ImportFormatError(f"line {number} is not a JSON object")
    return row


@dataclass(frozen=True)
class ImportResult:
    """Request specs for one prompt set and one annotation batch, plus what the source could not carry.

    `prompts` go into a prompt set's `spec.prompts`; `items` into an annotation batch's `spec.items`;
    `batch_meta` holds the batch's other spec fields. `losses` are human-readable sentences for the
    batch's documentation: every registry field the source format had no value for, and every record
    the importer skipped, with counts.
    """

    prompts: list[dict[str, Any]]
    items: list[dict[str, Any]]
    batch_meta: dict[str, Any]
    losses: list[str]


def prompt_id_for(text: str) -> str:
    """A stable prompt id for sources that have none: `p-` and the first 16 hex digits of sha256(text)."""
    return "p-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def parse_timestamp(value: object) -> tuple[datetime | None, bool]:
    """An aware UTC datetime from an ISO 8601 string or a datetime, and whether it was naive.

    A naive value is taken as UTC (the caller reports that as a loss); an empty value is None.
    """
    if value is None or value == "":
        return None, False
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError as exc:
            raise ImportFormatError(f"not an ISO 8601 timestamp: {value!r}") from exc
    else:
        raise ImportFormatError(f"not a timestamp: {value!r}")
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC), True
    return moment.astimezone(UTC), False


def format_utc(moment: datetime | None) -> str | None:
    """`2026-11-16T09:00:00Z` (whole seconds, UTC) or None."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def text_value(value: object, what: str) -> str:
    """A source field that must hold text."""
    if not isinstance(value, str):
        raise ImportFormatError(f"{what} must be a string, got {type(value).__name__}")
    return value


class SpecBuilder:
    """Collects prompts, items and losses for one import and checks them against the registry contract."""

    def __init__(
        self,
        *,
        tool: str,
        annotator_pool: str,
        source: str,
        privacy_reviewed: bool,
        complexity: str | None,
    ) -> None:
        if source not in PROMPT_SOURCES:
            raise ValueError(f"source must be one of {sorted(PROMPT_SOURCES)}, got {source!r}")
        if complexity is not None and complexity not in COMPLEXITIES:
            raise ValueError(f"complexity must be one of {sorted(COMPLEXITIES)} or None, got {complexity!r}")
        self._tool = tool
        self._annotator_pool = annotator_pool
        self._source = source
        self._privacy_reviewed = privacy_reviewed
        self._complexity = complexity
        self._prompts: dict[str, dict[str, Any]] = {}
        self._items: dict[tuple[str, str], dict[str, Any]] = {}
        self._repeats = 0
        self._topic_conflicts = 0
        self._losses: list[str] = []
        self._skipped: Counter[str] = Counter()
        self._ai_models: list[str] = []
        self._ai_assisted = False

    def prompt(self, text: str, *, prompt_id: str | None = None, topic: str | None = None, turns: int = 1) -> str:
        """Register a prompt (once per id) and return its id."""
        pid = prompt_id if prompt_id is not None else prompt_id_for(text)
        existing = self._prompts.get(pid)
        if existing is not None:
            if existing["text"] != text:
                raise ImportFormatError(f"prompt id {pid!r} names two different prompt texts")
            if topic is not None and existing["topic"] != topic:
                self._topic_conflicts += 1
            return pid
        self._prompts[pid] = {
            "id": pid,
            "text": text,
            "source": self._source,
            "topic": topic,
            "complexity": self._complexity,
            "turns": max(1, turns),
            "privacy_reviewed": self._privacy_reviewed,
            "production_validation": False,
        }
        return pid

    def item(
        self,
        *,
        pair_id: str,
        prompt_id: str,
        response_a: str,
        response_b: str,
        annotator: str,
        choice: Choice,
        model_a: str | None = None,
        model_b: str | None = None,
        shown_first: Slot | None = None,
        justification: str | None = None,
        dimensions: Mapping[str, Choice] | None = None,
        session_id: str | None = None,
        started_at: datetime | None = None,
        submitted_at: datetime | None = None,
        gold: Choice | None = None,
        ai_choice: Choice | None = None,
    ) -> None:
        """Add one judgement; a repeated (pair_id, annotator) replaces the earlier one."""
        if prompt_id not in self._prompts:
            raise ValueError(f"item {pair_id!r} names prompt {prompt_id!r}, which was never registered")
        dims = dict(dimensions or {})
        for name, value in [("choice", choice), ("gold", gold), ("ai_choice", ai_choice), *dims.items()]:
            if value is not None and value not in CHOICES:
                raise ValueError(f"{name} must be one of a, b, tie; got {value!r}")
        if shown_first not in (None, "a", "b"):
            raise ValueError(f"shown_first must be a, b or None; got {shown_first!r}")
        record: dict[str, Any] = {
            "pair_id": pair_id,
            "prompt_id": prompt_id,
            "response_a": response_a,
            "response_b": response_b,
            "model_a": model_a,
            "model_b": model_b,
            "shown_first": shown_first,
            "annotator": annotator,
            "choice": choice,
            "justification": justification,
            "dimensions": dims,
            "session_id": session_id,
            "started_at": format_utc(started_at),
            "submitted_at": format_utc(submitted_at),
            "gold": gold,
        }
        if ai_choice is not None:
            record["ai_choice"] = ai_choice
        key = (pair_id, annotator)
        if key in self._items:
            self._repeats += 1
            del self._items[key]  # the kept judgement takes the position of the last one
        self._items[key] = record

    def lose(self, note: str) -> None:
        """Record what the source cannot carry (once per distinct sentence)."""
        if note not in self._losses:
            self._losses.append(note)

    def skip(self, reason: str, count: int = 1) -> None:
        """Count a source record left out; reported as one loss sentence per reason, with its count."""
        self._skipped[reason] += count

    def assisted_by(self, model: str | None) -> None:
        """Annotators saw a machine suggestion (from `model` when the source names it)."""
        self._ai_assisted = True
        if model and model not in self._ai_models:
            self._ai_models.append(model)

    def build(self) -> ImportResult:
        items = list(self._items.values())
        losses = list(self._losses)
        for reason, count in self._skipped.items():
            losses.append(f"skipped {count} {reason}")
        if self._repeats:
            losses.append(
                f"{self._repeats} repeated (pair_id, annotator) judgement(s) in the source: kept the last of each"
            )
        if self._topic_conflicts:
            losses.append(f"{self._topic_conflicts} prompt(s) appeared with a second topic: kept the first")
        meta = _batch_meta(self._tool, self._annotator_pool, items, self._ai_assisted, self._ai_models)
        if meta["collected_from"] is None:
            losses.append("no annotation timestamps: collected_from and collected_to must be set by hand")
        if self._ai_assisted and not self._ai_models:
            losses.append("annotators saw machine suggestions from an unnamed model: ai_model must be set by hand")
        if self._source == "usage" and not self._privacy_reviewed:
            losses.append(
                "prompts are marked source=usage and not privacy-reviewed: the registry refuses them until "
                "a privacy review sets privacy_reviewed"
            )
        used = {item["prompt_id"] for item in items}
        prompts = [prompt for pid, prompt in self._prompts.items() if pid in used]
        return ImportResult(prompts=prompts, items=items, batch_meta=meta, losses=losses)


def _batch_meta(
    tool: str, pool: str, items: Iterable[Mapping[str, Any]], ai_assisted: bool, ai_models: list[str]
) -> dict[str, Any]:
    stamps = sorted(
        cast(str, stamp) for item in items for stamp in (item["started_at"], item["submitted_at"]) if stamp is not None
    )
    meta: dict[str, Any] = {
        "annotator_pool": pool,
        "tool": tool,
        "collected_from": stamps[0][:10] if stamps else None,
        "collected_to": stamps[-1][:10] if stamps else None,
        "ai_assisted": ai_assisted,
    }
    if ai_models:
        meta["ai_model"] = ", ".join(ai_models)
    return meta
