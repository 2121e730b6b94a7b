"""PandaLM human-annotated test set -> prompt-set prompts and annotation-batch items."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from app.importers.spec import Choice, ImportFormatError, ImportResult, PromptSource, SpecBuilder, text_value

ANNOTATORS = ("annotator1", "annotator2", "annotator3")
_LABELS: Mapping[int, Choice] = {0: "tie", 1: "a", 2: "b"}


def from_pandalm(
    path_or_obj: str | Path | Sequence[Mapping[str, Any]],
    *,
    annotator_pool: str = "pandalm-annotators",
    source: PromptSource = "usage",
    privacy_reviewed: bool = False,
    complexity: str | None = None,
) -> ImportResult:
    """Read PandaLM's `data/testset-v1.json` (a path, or the parsed list).

    Shape (https://github.com/WeOpenML/PandaLM, `data/testset-v1.json`; described in the paper
    https://arxiv.org/abs/2306.05087, section 4): a JSON list of `{"idx", "motivation_app", "cmp_key":
    "<modelA>_<modelB>", "instruction", "input", "response1", "response2", "annotator1", "annotator2",
    "annotator3"}` with labels 0 = tie, 1 = response1 better, 2 = response2 better.

    The prompt is `instruction`, followed by a blank line and `input` when there is one; its topic is
    `motivation_app`. `pair_id` is `pandalm-<idx>`; response1 is response_a (model A of `cmp_key`).
    """
    rows = _load(path_or_obj)
    builder = SpecBuilder(
        tool="pandalm",
        annotator_pool=annotator_pool,
        source=source,
        privacy_reviewed=privacy_reviewed,
        complexity=complexity,
    )
    unsplit_keys = 0
    coerced: list[str] = []
    for row in rows:
        idx = row.get("idx")
        if idx is None:
            raise ImportFormatError("a PandaLM row has no idx")
        instruction = text_value(row.get("instruction"), f"row {idx} instruction")
        extra = row.get("input") or ""
        text = instruction + ("\n\n" + text_value(extra, f"row {idx} input") if extra else "")
        topic = row.get("motivation_app")
        prompt_id = builder.prompt(text, topic=None if topic is None else str(topic))
        models = str(row.get("cmp_key") or "").split("_")
        if len(models) != 2 or not all(models):
            unsplit_keys += 1
            models = ["", ""]
        responses = [_response_text(row.get(key), idx, key, coerced) for key in ("response1", "response2")]
        for annotator in ANNOTATORS:
            label = row.get(annotator)
            if not isinstance(label, int) or isinstance(label, bool) or label not in _LABELS:
                raise ImportFormatError(f"row {idx} {annotator} must be 0, 1 or 2, got {label!r}")
            builder.item(
                pair_id=f"pandalm-{idx}",
                prompt_id=prompt_id,
                response_a=responses[0],
                response_b=responses[1],
                model_a=models[0] or None,
                model_b=models[1] or None,
                annotator=annotator,
                choice=_LABELS[label],
            )
    if unsplit_keys:
        builder.lose(f"{unsplit_keys} cmp_key value(s) did not split into two model names: models left null")
    if coerced:
        builder.lose(
            f"{len(coerced)} response(s) are JSON scalars, not text ({', '.join(coerced)}): "
            "stored as their Python spelling (true -> 'True')"
        )
    builder.lose(
        "annotators are the anonymous columns annotator1..3; the source does not say whether a column is "
        "the same person across pairs"
    )
    builder.lose("no display order, timestamps, sessions, justifications or per-dimension labels in the source")
    return builder.build()


def _response_text(value: object, idx: object, key: str, coerced: list[str]) -> str:
    """The text of a response; a few rows of the published file hold a JSON `true` where the model
    answered "True", which is kept as that text rather than refused."""
    if isinstance(value, bool | int | float):
        coerced.append(f"idx {idx} {key}")
        return str(value)
    return text_value(value, f"row {idx} {key}")


def _load(path_or_obj: str | Path | Sequence[Mapping[str, Any]]) -> Sequence[Mapping[str, Any]]:
    if isinstance(path_or_obj, str | Path):
        loaded = json.loads(Path(path_or_obj).read_text(encoding="utf-8"))
    else:
        loaded = path_or_obj
    if not isinstance(loaded, list | tuple) or not all(isinstance(row, Mapping) for row in loaded):
        raise ImportFormatError("PandaLM's test set is a JSON list of objects")
    return loaded
