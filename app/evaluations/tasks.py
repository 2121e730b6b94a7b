"""The blinded pairwise tasks of an evaluation campaign, and the registry's own copy of who is who.

A task compares two models' responses to one prompt. Its id and its left/right order follow from the
campaign's seed alone, so the same campaign always yields the same tasks, and anyone holding the seed
can check that the order was drawn, not chosen. The registry keeps the identities inside `tasks.jsonl`
(a derived blob of the campaign); the exports evaluators see (app.evaluations.formats) strip them.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from app.core.errors import NotFound
from app.records.models import Record
from app.storage.base import BlobStore, read_bytes

TASKS_FILE = "tasks.jsonl"
Pairing = Literal["reference", "all"]
# how the ids and the order are drawn, recorded in each campaign so a reader need not trust this code
BLINDING = (
    "task_id = 't-' + sha256('{seed}:{prompt_id}:{x}:{y}')[:12 hex] with x < y the two model ids; "
    "x is shown on the left when random.Random('{seed}:{task_id}').random() < 0.5; tasks in task_id order"
)


@dataclass(frozen=True)
class Prompt:
    id: str
    text: str
    source: str


def task_id_of(seed: int, prompt_id: str, first: str, second: str) -> str:
    """The task's id: a hash of the seed, the prompt and the two models (in id order, so either way round
    names the same task)."""
    x, y = sorted((first, second))
    return "t-" + hashlib.sha256(f"{seed}:{prompt_id}:{x}:{y}".encode()).hexdigest()[:12]


def comparisons(reference: str, checkpoints: Sequence[str], pairing: Pairing) -> list[tuple[str, str, str]]:
    """(model, model, comparison) for every pair a prompt is judged on: each checkpoint against the
    reference, and with `all` each checkpoint against each later one too."""
    pairs = [(reference, checkpoint, "reference") for checkpoint in checkpoints]
    if pairing == "all":
        pairs += [(first, second, "pairwise") for i, first in enumerate(checkpoints) for second in checkpoints[i + 1 :]]
    return pairs


def build_tasks(
    prompts: Sequence[Prompt],
    responses: Mapping[tuple[str, str], str],
    pairs: Sequence[tuple[str, str, str]],
    seed: int,
) -> list[dict[str, Any]]:
    """One task per prompt and pair, in task_id order (a hash: the order reveals no model)."""
    tasks = []
    for prompt in prompts:
        for first, second, comparison in pairs:
            task_id = task_id_of(seed, prompt.id, first, second)
            x, y = sorted((first, second))
            left, right = (x, y) if random.Random(f"{seed}:{task_id}").random() < 0.5 else (y, x)
            tasks.append(
                {
                    "task_id": task_id,
                    "prompt_id": prompt.id,
                    "source": prompt.source,
                    "prompt": prompt.text,
                    "left_model": left,
                    "right_model": right,
                    "response_left": responses[(prompt.id, left)],
                    "response_right": responses[(prompt.id, right)],
                    "comparison": comparison,
                }
            )
    return sorted(tasks, key=lambda task: task["task_id"])


def tasks_jsonl(tasks: Sequence[Mapping[str, Any]]) -> bytes:
    return "".join(json.dumps(task, ensure_ascii=False) + "\n" for task in tasks).encode()


def load_tasks(campaign: Record, store: BlobStore) -> list[dict[str, Any]]:
    """The tasks of a registered `evaluation_campaign`, identities included (for the server's use only)."""
    files = {entry["path"]: entry["digest"] for entry in campaign.derived.get("files", [])}
    if TASKS_FILE not in files:
        raise NotFound(f"{campaign.kind} {campaign.name} v{campaign.version} has no {TASKS_FILE}")
    lines = read_bytes(store, files[TASKS_FILE]).decode().splitlines()
    return [json.loads(line) for line in lines if line]
