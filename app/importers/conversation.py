"""Prompts and responses that are conversations: chat message lists and Anthropic HH transcripts.

A prompt set stores a prompt as one `text`, so a conversation has to become a string without losing
anything a trainer or an auditor needs: a message list is stored as its canonical JSON text (the list of
`{"role", "content", ...}` objects, keys sorted, UTF-8), which parses back to exactly what was shown; a
single assistant message is stored as its content alone. HH-RLHF transcripts are already strings and
are split, not re-encoded, so that `prompt + response` is the original transcript byte for byte.
"""

from __future__ import annotations

import json
from typing import Any, TypeGuard

from app.importers.spec import ImportFormatError

HUMAN_MARKER = "\n\nHuman:"
ASSISTANT_MARKER = "\n\nAssistant:"


def is_messages(value: object) -> TypeGuard[list[dict[str, Any]]]:
    """A chat: a non-empty list of objects that each have a `role` and a `content`."""
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(m, dict) and "role" in m and "content" in m for m in value)
    )


def messages_json(messages: list[dict[str, Any]]) -> str:
    """The canonical text of a message list (sorted keys, no ASCII escaping)."""
    return json.dumps(messages, ensure_ascii=False, sort_keys=True)


def user_turns(messages: list[dict[str, Any]]) -> int:
    """How many user turns a conversation has (at least 1)."""
    return max(1, sum(1 for m in messages if m.get("role") == "user"))


def prompt_text(value: object, what: str) -> tuple[str, int]:
    """A prompt field (text or chat) as prompt-set text and its number of user turns."""
    if isinstance(value, str):
        return value, 1
    if is_messages(value):
        return messages_json(value), user_turns(value)
    raise ImportFormatError(f"{what} must be text or a list of {{role, content}} messages")


def response_text(value: object, what: str) -> str:
    """A response field (text, one assistant message, or several messages) as item text."""
    if isinstance(value, str):
        return value
    if is_messages(value):
        messages = value
        if len(messages) == 1 and messages[0].get("role") == "assistant" and isinstance(messages[0]["content"], str):
            return str(messages[0]["content"])
        return messages_json(messages)
    raise ImportFormatError(f"{what} must be text or a list of {{role, content}} messages")


def split_transcripts(chosen: str, rejected: str) -> tuple[str, str, str]:
    """Split two HH transcripts that share a prompt into (prompt, chosen response, rejected response).

    The prompt is the shared prefix up to and including its last `\\n\\nAssistant:` marker, so a response
    keeps its leading space and `prompt + response` is the original transcript. Cutting at the marker
    (rather than at the first differing character, as a plain common-prefix split does) keeps two
    responses that begin with the same words whole.
    """
    shared = _common_prefix_length(chosen, rejected)
    cut = chosen.rfind(ASSISTANT_MARKER, 0, shared)
    if cut < 0:
        raise ImportFormatError("the two transcripts share no `\\n\\nAssistant:` turn to split the prompt at")
    end = cut + len(ASSISTANT_MARKER)
    return chosen[:end], chosen[end:], rejected[end:]


def transcript_turns(prompt: str) -> int:
    """Human turns in an HH transcript prompt (at least 1)."""
    return max(1, prompt.count(HUMAN_MARKER))


def split_conversations(
    chosen: list[dict[str, Any]], rejected: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """Split two chats with an implicit shared prompt into (prompt messages, chosen tail, rejected tail).

    The prompt is the longest shared run of messages, shortened until it ends on a non-assistant
    message, so each tail starts with the assistant's answer.
    """
    shared = 0
    while shared < min(len(chosen), len(rejected)) and chosen[shared] == rejected[shared]:
        shared += 1
    while shared > 0 and chosen[shared - 1].get("role") == "assistant":
        shared -= 1
    if shared == 0:
        raise ImportFormatError("the chosen and rejected conversations share no prompt messages")
    return chosen[:shared], chosen[shared:], rejected[shared:]


def _common_prefix_length(left: str, right: str) -> int:
    limit = min(len(left), len(right))
    index = 0
    while index < limit and left[index] == right[index]:
        index += 1
    return index
