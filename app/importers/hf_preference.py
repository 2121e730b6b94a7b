"""Hugging Face preference rows (`prompt`, `chosen`, `rejected`) -> prompts and annotation-batch items."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from app.importers.conversation import (
    HUMAN_MARKER,
    is_messages,
    messages_json,
    prompt_text,
    response_text,
    split_conversations,
    split_transcripts,
    transcript_turns,
    user_turns,
)
from app.importers.spec import ImportFormatError, ImportResult, PromptSource, SpecBuilder, jsonl_row


def from_hf_preference_jsonl(
    lines: Iterable[str | Mapping[str, Any]],
    *,
    annotator: str = "source",
    prompt_field: str = "prompt",
    chosen_field: str = "chosen",
    rejected_field: str = "rejected",
    id_field: str | None = None,
    prompt_id_field: str | None = None,
    placement: Literal["hash", "chosen_a"] = "hash",
    tool: str = "hf-dataset",
    annotator_pool: str = "hf-dataset",
    source: PromptSource = "usage",
    privacy_reviewed: bool = False,
    complexity: str | None = None,
) -> ImportResult:
    """Read preference rows in the Hugging Face / TRL shapes, as JSON lines or already-parsed dicts.

    Shapes (TRL "Dataset formats", preference type:
    https://huggingface.co/docs/trl/dataset_formats#preference):
    - standard: `{"prompt": str, "chosen": str, "rejected": str}`;
    - conversational: `prompt` a list of `{"role", "content"}` messages and `chosen` / `rejected` the
      assistant messages that follow;
    - implicit prompt: no `prompt`, `chosen` / `rejected` are whole conversations sharing their opening
      messages, or Anthropic HH-RLHF transcripts (https://huggingface.co/datasets/Anthropic/hh-rlhf:
      `"\\n\\nHuman: ...\\n\\nAssistant: ..."`) sharing all but the last assistant turn. The shared part
      becomes the prompt (see `conversation.split_transcripts` / `split_conversations`).

    One row is one judgement by `annotator`. With `placement="hash"` the chosen response goes to slot
    a or b by a hash of the pair (so that the preferred response has no constant position); with
    `"chosen_a"` it is always response_a. `pair_id` is the row's `id_field` when given, else `hf-` and a
    hash of the prompt and the two responses (order-free), so the same pair gets the same id anywhere.
    """
    builder = SpecBuilder(
        tool=tool,
        annotator_pool=annotator_pool,
        source=source,
        privacy_reviewed=privacy_reviewed,
        complexity=complexity,
    )
    identical = 0
    for number, line in enumerate(lines, start=1):
        row = jsonl_row(line, number)
        if row is None:
            continue
        prompt, turns, chosen, rejected = _split_row(row, prompt_field, chosen_field, rejected_field, number)
        own_prompt_id = row.get(prompt_id_field) if prompt_id_field else None
        prompt_id = builder.prompt(prompt, prompt_id=None if own_prompt_id is None else str(own_prompt_id), turns=turns)
        low, high = sorted((chosen, rejected))
        digest = hashlib.sha256(f"{prompt}\0{low}\0{high}".encode()).digest()
        own_id = row.get(id_field) if id_field else None
        pair_id = str(own_id) if own_id is not None else "hf-" + digest.hex()[:16]
        chosen_in_a = placement == "chosen_a" or (digest[0] % 2 == 0) == (chosen <= rejected)
        identical += chosen == rejected
        builder.item(
            pair_id=pair_id,
            prompt_id=prompt_id,
            response_a=chosen if chosen_in_a else rejected,
            response_b=rejected if chosen_in_a else chosen,
            annotator=annotator,
            choice="a" if chosen_in_a else "b",
        )
    builder.lose(
        f"one label per pair and no annotator identities: every item is by {annotator!r}, "
        "so no agreement figures can be computed"
    )
    builder.lose("the chosen/rejected format has no tie option")
    builder.lose("no display order, timestamps, sessions, justifications or source models in the rows")
    if placement == "hash":
        builder.lose("response_a/response_b order is assigned by a hash of the pair, not by the source")
    if identical:
        builder.lose(f"{identical} pair(s) have identical chosen and rejected responses")
    return builder.build()


def _split_row(
    row: Mapping[str, Any], prompt_field: str, chosen_field: str, rejected_field: str, number: int
) -> tuple[str, int, str, str]:
    """(prompt text, turns, chosen text, rejected text) for one row of any supported shape."""
    chosen, rejected = row.get(chosen_field), row.get(rejected_field)
    if chosen is None or rejected is None:
        raise ImportFormatError(f"row {number} has no {chosen_field!r} or {rejected_field!r}")
    prompt = row.get(prompt_field)
    if prompt is not None:
        text, turns = prompt_text(prompt, f"row {number} {prompt_field}")
        return (
            text,
            turns,
            response_text(chosen, f"row {number} {chosen_field}"),
            response_text(rejected, f"row {number} {rejected_field}"),
        )
    if isinstance(chosen, str) and isinstance(rejected, str) and HUMAN_MARKER in chosen:
        text, chosen_text, rejected_text = split_transcripts(chosen, rejected)
        return text, transcript_turns(text), chosen_text, rejected_text
    if is_messages(chosen) and is_messages(rejected):
        shared, chosen_tail, rejected_tail = split_conversations(chosen, rejected)
        return (
            messages_json(shared),
            user_turns(shared),
            response_text(chosen_tail, f"row {number} {chosen_field}"),
            response_text(rejected_tail, f"row {number} {rejected_field}"),
        )
    raise ImportFormatError(
        f"row {number} has no {prompt_field!r} and its responses are neither HH transcripts nor conversations"
    )
