"""Scoring (prompt, response) pairs with a reward model, the way TRL's RewardTrainer trained it.

RewardTrainer scores `prompt + response + eos`, tokenized with the tokenizer's defaults and padded on the
right, and reads the score at the last non-pad token. The same text is scored here, in evaluation, in
`score` runs and as the reward of rloo/grpo (TRL's own reward-model path drops the eos), so one reward
model gives one reward to one response wherever it is asked.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's rank correlation (average ranks for ties); None where it is undefined (fewer than two
    points, or one side constant)."""
    if len(x) != len(y) or len(x) < 2:
        return None
    rx, ry = _ranks(np.asarray(x, dtype=float)), _ranks(np.asarray(y, dtype=float))
    if rx.std() == 0 or ry.std() == 0:
        return None
    return float(np.corrcoef(rx, ry)[0, 1])


def _ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), dtype=float)
    ranks[order] = np.arange(1, len(values) + 1, dtype=float)
    for value in np.unique(values):
        tied = values == value
        if tied.sum() > 1:
            ranks[tied] = ranks[tied].mean()
    return ranks


def mean(values: Sequence[float]) -> float | None:
    return float(np.mean(values)) if len(values) else None


def finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


class RewardScorer:
    """A reward model and its tokenizer, in evaluation mode, scoring in fixed-size batches."""

    def __init__(self, model: Any, tokenizer: Any, *, max_length: int | None = None, batch_size: int = 8) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        # The score is read at the last non-pad token, which the model finds through its config.
        model.config.pad_token_id = tokenizer.pad_token_id
        limit = getattr(model.config, "max_position_embeddings", None)
        self.max_length = min(v for v in (max_length, limit) if v is not None) if (max_length or limit) else None

    @classmethod
    def load(cls, model_dir: Path, *, max_length: int | None = None, batch_size: int = 8) -> RewardScorer:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from workers.trainers.environment import device

        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=1)
        model.to(device())
        model.eval()
        return cls(model, tokenizer, max_length=max_length, batch_size=batch_size)

    def text(self, prompt: str, response: str) -> str:
        eos = self.tokenizer.eos_token or ""
        text = prompt + response
        return text if text.endswith(eos) else text + eos

    def score(self, prompts: Sequence[str], responses: Sequence[str]) -> list[float]:
        import torch

        texts = [self.text(p, r) for p, r in zip(prompts, responses, strict=True)]
        was_training = self.model.training
        self.model.eval()
        scores: list[float] = []
        side = self.tokenizer.padding_side, self.tokenizer.truncation_side
        # Right padding as in training; a text longer than max_length keeps its end, where the score is read.
        self.tokenizer.padding_side, self.tokenizer.truncation_side = "right", "left"
        try:
            with torch.no_grad():
                for start in range(0, len(texts), self.batch_size):
                    batch = self.tokenizer(
                        texts[start : start + self.batch_size],
                        padding=True,
                        truncation=self.max_length is not None,
                        max_length=self.max_length,
                        return_tensors="pt",
                    ).to(self.model.device)
                    logits = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
                    scores += [float(v) for v in logits[:, 0].float().cpu()]
        finally:
            self.tokenizer.padding_side, self.tokenizer.truncation_side = side
            self.model.train(was_training)
        return scores

    def as_reward_function(self) -> Any:
        """A TRL reward function (`prompts`, `completions`, ... -> rewards) named `reward_model`."""

        def reward_model(prompts: list[str], completions: list[str], **_: Any) -> list[float]:
            return self.score(prompts, completions)

        return reward_model
