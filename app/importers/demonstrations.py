"""Demonstration files -> the prompts of a prompt set and the rows of a demonstration set.

Two shapes, both TRL dataset formats (https://huggingface.co/docs/trl/dataset_formats):
- prompt-completion: `{"prompt": ..., "completion": ...}`, each text or a list of `{"role", "content"}`
  messages (conversational prompt-completion);
- messages: `{"messages": [{"role", "content"}, ...]}` (conversational language modeling), where the
  last message is the assistant's response and every message before it is the prompt.

A conversation prompt is stored as its canonical message-list JSON (`app.importers.conversation`), which
the `sft` trainer turns back into messages. Prompt ids are `prompt_id_for(text)` (so the same prompt gets
the same id in any import); a demonstration's id is the row's own (`id_field`) or `d-` and a hash of its
prompt and response, and a repeated row is kept once and reported as a loss.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from app.importers.conversation import is_messages, messages_json, prompt_text, response_text, user_turns
from app.importers.spec import PROMPT_SOURCES, ImportFormatError, jsonl_row, prompt_id_for

FORMATS = ("prompt-completion", "messages")


@dataclass(frozen=True)
class DemonstrationImport:
    """Request specs: `prompts` for a prompt set's `spec.prompts`, `demonstrations` for a demonstration
    set's `spec.demonstrations`, and `losses`, sentences for what the source could not carry."""

    prompts: list[dict[str, Any]]
    demonstrations: list[dict[str, Any]]
    losses: list[str]


def _split_messages(row: Mapping[str, Any], field: str, number: int) -> tuple[str, int, str, int]:
    """(prompt text, user turns, response, assistant turns before the response) of a messages row."""
    messages = row.get(field)
    if not is_messages(messages):
        raise ImportFormatError(f"row {number} has no {field!r} list of {{role, content}} messages")
    *opening, last = messages
    if last.get("role") != "assistant" or not isinstance(last.get("content"), str):
        raise ImportFormatError(f"row {number}: the last message must be the assistant's response, as text")
    if not opening:
        raise ImportFormatError(f"row {number}: no message comes before the assistant's response")
    earlier = sum(1 for m in opening if m.get("role") == "assistant")
    return messages_json(opening), user_turns(opening), str(last["content"]), earlier


def from_demonstrations_jsonl(
    lines: Iterable[str | Mapping[str, Any]],
    *,
    fmt: str = "prompt-completion",
    prompt_field: str = "prompt",
    completion_field: str = "completion",
    messages_field: str = "messages",
    id_field: str | None = None,
    author: str | None = None,
    source: str = "usage",
    privacy_reviewed: bool = False,
) -> DemonstrationImport:
    """Read demonstration rows of `fmt` (one of FORMATS), as JSON lines or already-parsed dicts."""
    if fmt not in FORMATS:
        raise ImportFormatError(f"unknown demonstration format {fmt!r}; one of {list(FORMATS)}")
    if source not in PROMPT_SOURCES:
        raise ImportFormatError(f"prompt source {source!r} is not one of {sorted(PROMPT_SOURCES)}")
    prompts: dict[str, dict[str, Any]] = {}
    demonstrations: dict[str, dict[str, Any]] = {}
    repeated = earlier_turns = 0
    for number, line in enumerate(lines, start=1):
        row = jsonl_row(line, number)
        if row is None:
            continue
        if fmt == "messages":
            text, turns, response, earlier = _split_messages(row, messages_field, number)
            earlier_turns += earlier
        else:
            if row.get(prompt_field) is None or row.get(completion_field) is None:
                raise ImportFormatError(f"row {number} has no {prompt_field!r} or {completion_field!r}")
            text, turns = prompt_text(row[prompt_field], f"row {number}'s {prompt_field!r}")
            response = response_text(row[completion_field], f"row {number}'s {completion_field!r}")
        if not text or not response:
            raise ImportFormatError(f"row {number} has an empty prompt or response")
        prompt_id = prompt_id_for(text)
        prompts.setdefault(
            prompt_id,
            {"id": prompt_id, "text": text, "source": source, "turns": turns, "privacy_reviewed": privacy_reviewed},
        )
        own_id = row.get(id_field) if id_field else None
        digest = hashlib.sha256(f"{prompt_id}\0{response}".encode()).hexdigest()[:16]
        demo_id = str(own_id) if own_id is not None else f"d-{digest}"
        if demo_id in demonstrations:
            repeated += 1
        demonstrations[demo_id] = {"id": demo_id, "prompt_id": prompt_id, "response": response, "author": author}
    losses = ["no topic or complexity per prompt in the rows"]
    if author is None:
        losses.append("no author per demonstration in the rows")
    if repeated:
        losses.append(f"{repeated} repeated row(s) (same id) kept once, the last")
    if earlier_turns:
        losses.append(
            f"{earlier_turns} earlier assistant turn(s) are part of their prompts: only each conversation's last "
            "response is trained on"
        )
    return DemonstrationImport(list(prompts.values()), list(demonstrations.values()), losses)
