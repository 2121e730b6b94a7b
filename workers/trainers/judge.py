"""Judges: of two responses to one prompt, which is better, by a model registered in the project.

A reward checkpoint scores both responses as it was trained to score them (`RewardScorer`). A policy
checkpoint or base model is prompted as a judge (`PromptedJudge`): asked which response is better, it
scores each side by the log-probability of answering with its letter. Either way a difference within
`tie_margin` is a tie, since a model's small differences are mostly noise. The choice is `a` for the
first response given (a campaign task's left one, a batch item's `response_a`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from app.core.errors import ValidationFailed
from workers.trainers.reward_scoring import RewardScorer

JUDGE_PROMPT = (
    "Which response answers the prompt better? Answer with A or B.\n\n"
    "Prompt:\n{prompt}\n\nResponse A:\n{response_a}\n\nResponse B:\n{response_b}\n\nThe better response is"
)
ANSWERS = (" A", " B")


class Judge(Protocol):
    def scores(
        self, prompts: Sequence[str], responses_a: Sequence[str], responses_b: Sequence[str]
    ) -> tuple[list[float], list[float]]: ...

    def recorded(self) -> dict[str, Any]: ...


class RewardJudge:
    """A reward model's scores of each response."""

    def __init__(self, scorer: RewardScorer) -> None:
        self.scorer = scorer

    def scores(
        self, prompts: Sequence[str], responses_a: Sequence[str], responses_b: Sequence[str]
    ) -> tuple[list[float], list[float]]:
        return self.scorer.score(prompts, responses_a), self.scorer.score(prompts, responses_b)

    def recorded(self) -> dict[str, Any]:
        scorer = self.scorer
        return {
            "reward_text": "prompt + response + eos_token",
            "max_length": scorer.max_length,
            "batch_size": scorer.batch_size,
        }


class PromptedJudge:
    """A causal language model asked `JUDGE_PROMPT`: each response scores the log-probability of the next
    token being its letter (`ANSWERS`), read where the question ends. A question longer than the model's
    context keeps its end, where the answer is asked for."""

    def __init__(self, model: Any, tokenizer: Any, *, max_length: int | None = None, batch_size: int = 8) -> None:
        self.model, self.tokenizer, self.batch_size = model, tokenizer, batch_size
        if tokenizer.pad_token is None:  # as TRL does
            tokenizer.pad_token = tokenizer.eos_token
        limit = getattr(model.config, "max_position_embeddings", None)
        self.max_length = min(v for v in (max_length, limit) if v is not None) if (max_length or limit) else None
        self.answer_ids = [tokenizer(text, add_special_tokens=False)["input_ids"][-1] for text in ANSWERS]
        if self.answer_ids[0] == self.answer_ids[1]:
            raise ValidationFailed(
                "this judge's tokenizer gives the answers A and B one token; it cannot be prompted as a judge",
                errors=[{"loc": ["inputs", "judge"], "msg": "A and B are one token"}],
            )

    @classmethod
    def load(cls, model_dir: Path, *, max_length: int | None = None, batch_size: int = 8) -> PromptedJudge:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from workers.trainers.environment import device

        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        model: Any = AutoModelForCausalLM.from_pretrained(model_dir, dtype="float32")
        model.to(device())
        model.eval()
        return cls(model, tokenizer, max_length=max_length, batch_size=batch_size)

    def scores(
        self, prompts: Sequence[str], responses_a: Sequence[str], responses_b: Sequence[str]
    ) -> tuple[list[float], list[float]]:
        import torch

        questions = [
            JUDGE_PROMPT.format(prompt=p, response_a=a, response_b=b)
            for p, a, b in zip(prompts, responses_a, responses_b, strict=True)
        ]
        tok = self.tokenizer
        side = tok.padding_side, tok.truncation_side
        tok.padding_side, tok.truncation_side = "left", "left"  # the last position is where the answer comes
        first: list[float] = []
        second: list[float] = []
        try:
            with torch.no_grad():
                for start in range(0, len(questions), self.batch_size):
                    batch = tok(
                        questions[start : start + self.batch_size],
                        padding=True,
                        truncation=self.max_length is not None,
                        max_length=self.max_length,
                        return_tensors="pt",
                    ).to(self.model.device)
                    logits = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
                    answers = torch.log_softmax(logits[:, -1, :].float(), dim=-1)[:, self.answer_ids].cpu()
                    first += [float(v) for v in answers[:, 0]]
                    second += [float(v) for v in answers[:, 1]]
        finally:
            tok.padding_side, tok.truncation_side = side
        return first, second

    def recorded(self) -> dict[str, Any]:
        return {
            "judge_prompt": JUDGE_PROMPT,
            "answers": list(ANSWERS),
            "score": "log-probability of the answer's token after the prompt",
            "max_length": self.max_length,
            "batch_size": self.batch_size,
        }


def load_judge(kind: str, folder: Path, *, max_length: int | None, batch_size: int) -> Judge:
    """A reward checkpoint judges by its scores; any other model is prompted."""
    if kind == "reward_checkpoint":
        return RewardJudge(RewardScorer.load(folder, max_length=max_length, batch_size=batch_size))
    return PromptedJudge.load(folder, max_length=max_length, batch_size=batch_size)


def choice(score_a: float, score_b: float, tie_margin: float) -> str:
    """`a`, `b` or `tie` for the two scores of one prompt's responses."""
    if abs(score_a - score_b) <= tie_margin:
        return "tie"
    return "a" if score_a > score_b else "b"


def judge_pairs(
    judge: Judge,
    prompts: Sequence[str],
    responses_a: Sequence[str],
    responses_b: Sequence[str],
    tie_margin: float,
) -> list[str]:
    """The choice of every pair."""
    scores_a, scores_b = judge.scores(prompts, responses_a, responses_b)
    return [choice(a, b, tie_margin) for a, b in zip(scores_a, scores_b, strict=True)]
