"""PRD's Vicuna-80 human ratings -> prompt-set prompts and annotation-batch items."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from app.importers.spec import Choice, ImportFormatError, ImportResult, PromptSource, SpecBuilder, text_value

_RATINGS = re.compile(r"answer_(?P<a>.+)-vs-answer_(?P<b>.+)-human-reviewer_threeclass\.jsonl")
_SCORES: Mapping[int, Choice] = {1: "a", 2: "b", 3: "tie"}
_SWAP: Mapping[Choice, Choice] = {"a": "b", "b": "a", "tie": "tie"}


def from_prd_vicuna80(
    root_dir: str | Path,
    *,
    annotator_pool: str = "prd-vicuna80-crowd",
    source: PromptSource = "usage",
    privacy_reviewed: bool = False,
    complexity: str | None = None,
) -> ImportResult:
    """Read the human ratings of PRD's Vicuna-80 folder (`data/vicuna80` of https://github.com/bcdnlp/PRD).

    Layout (PRD `data/README.md`): `prompts/vicuna_questions.jsonl` (`question_id`, `text`,
    `category`), `generations/answer_<model>.jsonl` (`question_id`, `model_id`, `text`) and
    `ratings-human/answer_<A>-vs-answer_<B>-human-reviewer_threeclass.jsonl`, one rating per line
    (`question_id`, `text`, `score`: 1 = A better, 2 = B better, 3 = tie), raters anonymous.

    One pair per (question, unordered model pair): `pair_id` `vicuna80-q<id>-<m1>-vs-<m2>` with the
    models sorted. The first file (by name) that rates a pair fixes its orientation: its A is
    response_a and shown first (A is "Assistant 1" in PRD's prompt template). A rating of the same pair
    from the reversed file is swapped into that orientation, with shown_first "b". Raters get ids
    `<A>-vs-<B>-rater-<n>`, numbered in line order per (file, question). Files naming a model with no
    generations file (the Guanaco models) are skipped.
    """
    root = Path(root_dir)
    questions = {int(q["question_id"]): q for q in _jsonl(root / "prompts" / "vicuna_questions.jsonl")}
    answers: dict[str, dict[int, Mapping[str, Any]]] = {}
    for path in sorted((root / "generations").glob("answer_*.jsonl")):
        answers[path.stem.removeprefix("answer_")] = {int(a["question_id"]): a for a in _jsonl(path)}
    builder = SpecBuilder(
        tool="prd-vicuna80",
        annotator_pool=annotator_pool,
        source=source,
        privacy_reviewed=privacy_reviewed,
        complexity=complexity,
    )
    orientation: dict[tuple[int, frozenset[str]], tuple[str, str]] = {}
    skipped_files: Counter[str] = Counter()
    skipped_ratings = 0
    mismatched_text = 0
    for path in sorted((root / "ratings-human").glob("*.jsonl")):
        match = _RATINGS.fullmatch(path.name)
        if match is None:
            raise ImportFormatError(f"unexpected ratings file name: {path.name}")
        first, second = match["a"], match["b"]
        missing = [m for m in (first, second) if m not in answers]
        if missing:
            skipped_files.update(missing)
            skipped_ratings += sum(1 for _ in _jsonl(path))
            continue
        raters: Counter[int] = Counter()
        for rating in _jsonl(path):
            qid = int(rating["question_id"])
            question = questions.get(qid)
            if question is None:
                raise ImportFormatError(f"{path.name}: question {qid} is not in vicuna_questions.jsonl")
            mismatched_text += rating.get("text") != question["text"]
            score = rating.get("score")
            if not isinstance(score, int) or score not in _SCORES:
                raise ImportFormatError(f"{path.name}: score must be 1, 2 or 3, got {score!r}")
            raters[qid] += 1
            category = question.get("category")
            prompt_id = builder.prompt(
                text_value(question["text"], f"question {qid}"),
                prompt_id=f"vicuna80-q{qid}",
                topic=None if category is None else str(category),
            )
            slot_a, slot_b = orientation.setdefault((qid, frozenset((first, second))), (first, second))
            swapped = slot_a != first
            choice = _SCORES[score]
            low, high = sorted((first, second))
            builder.item(
                pair_id=f"vicuna80-q{qid}-{low}-vs-{high}",
                prompt_id=prompt_id,
                response_a=_answer(answers, slot_a, qid),
                response_b=_answer(answers, slot_b, qid),
                model_a=str(answers[slot_a][qid].get("model_id") or slot_a),
                model_b=str(answers[slot_b][qid].get("model_id") or slot_b),
                shown_first="b" if swapped else "a",
                annotator=f"{first}-vs-{second}-rater-{raters[qid]}",
                choice=_SWAP[choice] if swapped else choice,
            )
    if skipped_files:
        models = ", ".join(sorted(skipped_files))
        builder.lose(f"skipped {skipped_ratings} rating(s) in files naming models with no generations ({models})")
    if mismatched_text:
        builder.lose(f"{mismatched_text} rating line(s) quote a question text that differs from the question file")
    builder.lose(
        "raters are anonymous: rater-<n> is the n-th rating line for a question in a file, not a person, "
        "so per-annotator figures describe rating positions"
    )
    builder.lose(
        "display order is inferred from the file orientation (A as Assistant 1); PRD does not document "
        "what the human raters saw"
    )
    builder.lose("no timestamps, sessions, justifications or per-dimension labels in the ratings")
    return builder.build()


def _answer(answers: Mapping[str, Mapping[int, Mapping[str, Any]]], model: str, qid: int) -> str:
    answer = answers[model].get(qid)
    if answer is None:
        raise ImportFormatError(f"answer_{model}.jsonl has no answer to question {qid}")
    return text_value(answer.get("text"), f"answer_{model} question {qid}")


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            row = json.loads(line)
            if not isinstance(row, dict):
                raise ImportFormatError(f"{path.name} line {number} is not a JSON object")
            yield row
