"""The responses of an evaluation campaign: a checkpoint series and its reference answer the same prompts.

Which prompts: those of the prompt set reserved for production validation (every usage prompt where
none is), which no training run saw, plus its adversarial prompts, where reward hacking shows first;
`max_prompts` caps each source with a seeded draw. Each model samples one response per prompt the way
the checkpoint evaluations sample (`sample_completions`) and from the same seed, so the same weights
always give the same responses and two models differ by their weights, not by their draw.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workers.trainers.environment import isolated_rng
from workers.trainers.policy_evaluation import sample_completions, truncate_prompts

SAMPLING = "temperature 1.0, top_k 0, top_p 1.0"  # sample_completions: the policy's own distribution
DEFAULT_SEED = 0  # the evaluation_campaign kind's default


@dataclass(frozen=True)
class Generation:
    """How every model of a campaign answers, from the run's params; recorded in the campaign."""

    max_new_tokens: int = 64
    batch_size: int = 8
    max_length: int | None = None  # prompt plus response, in tokens; the model's context where None
    seed: int = DEFAULT_SEED

    @classmethod
    def of(cls, params: dict[str, Any]) -> Generation:
        return cls(
            max_new_tokens=int(params.get("max_new_tokens", cls.max_new_tokens)),
            batch_size=int(params.get("per_device_batch_size", cls.batch_size)),
            max_length=params.get("max_length"),
            seed=int(params.get("seed", cls.seed)),
        )

    def recorded(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "sampling": SAMPLING}


def evaluation_prompts(prompts: Sequence[dict[str, Any]], max_prompts: int | None, seed: int) -> list[dict[str, Any]]:
    """The prompts a campaign generates on (rows of the prompt set, in its order), at most `max_prompts`
    of each source."""
    reserved = [p for p in prompts if p.get("production_validation")]
    validation = reserved or [p for p in prompts if p["source"] == "usage"]
    chosen = {p["id"] for p in validation} | {p["id"] for p in prompts if p["source"] == "adversarial"}
    by_source: dict[str, list[str]] = {}
    for prompt in prompts:
        if prompt["id"] in chosen:
            by_source.setdefault(prompt["source"], []).append(prompt["id"])
    if max_prompts is not None:
        for source, ids in by_source.items():
            if len(ids) > max_prompts:
                by_source[source] = random.Random(f"{seed}:{source}").sample(ids, max_prompts)
    kept = {prompt_id for ids in by_source.values() for prompt_id in ids}
    return [p for p in prompts if p["id"] in kept]


def generate(model_dir: Path, prompts: list[str], generation: Generation) -> list[str]:
    """One response per prompt from the causal LM in `model_dir`; each prompt cut to its last tokens so
    that prompt and response fit `generation.max_length`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from workers.trainers.environment import device

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenizer.pad_token is None:  # as TRL does
        tokenizer.pad_token = tokenizer.eos_token
    model: Any = AutoModelForCausalLM.from_pretrained(model_dir, dtype="float32")
    model.to(device())
    model.eval()
    new = generation.max_new_tokens
    context = generation.max_length or getattr(model.config, "max_position_embeddings", None)
    cut = truncate_prompts(tokenizer, prompts, None if context is None else max(1, context - new))
    with torch.no_grad(), isolated_rng(generation.seed):
        _, _, texts = sample_completions(model, tokenizer, cut, max_new_tokens=new, batch_size=generation.batch_size)
    return list(texts)
