"""The automatic evaluations of a policy checkpoint.

On the validation prompts the policy samples one completion each (from a fixed seed, so the same weights
give the same figures), and we report:

- `mean_reward`: the reward model's mean score of those completions;
- `kl_to_reference`: the mean over completion tokens of the exact KL(policy || reference) of the
  next-token distributions, summed over the vocabulary (no sampling estimator, so never negative);
- `length_reward_correlation`: Spearman's rank correlation of reward with completion length in
  characters (reward hacking through length shows up here);
- `adversarial_mean_reward`: the mean reward of completions to the prompt set's adversarial prompts;
- `implicit_reward_accuracy` (dpo): on validation pairs, how often beta * log(pi/pi_ref) of the chosen
  response exceeds that of the rejected one (Rafailov et al. 2023, section 5).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from workers.trainers.environment import isolated_rng
from workers.trainers.preference_data import Pair
from workers.trainers.reward_scoring import RewardScorer, finite_or_none, mean, spearman


def truncate_prompts(tokenizer: Any, prompts: Sequence[str], max_tokens: int | None) -> list[str]:
    """Each prompt cut to its last `max_tokens` tokens (the end of a prompt is what a completion follows)."""
    if max_tokens is None:
        return list(prompts)
    cut = []
    for prompt in prompts:
        ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        cut.append(prompt if len(ids) <= max_tokens else tokenizer.decode(ids[-max_tokens:]))
    return cut


def sample_completions(
    policy: Any, tokenizer: Any, prompts: list[str], *, max_new_tokens: int, batch_size: int
) -> tuple[list[list[int]], list[list[int]], list[str]]:
    """One sampled completion per prompt (temperature 1, no top-k or top-p: the policy's own distribution),
    from the current random state: prompt ids, completion ids (through the first eos), text."""
    from transformers import GenerationConfig

    tok = tokenizer
    config = GenerationConfig(  # type: ignore[no-untyped-call]
        max_new_tokens=max_new_tokens,
        do_sample=True,
        temperature=1.0,
        top_k=0,
        top_p=1.0,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
        bos_token_id=tok.bos_token_id,
    )
    all_prompt_ids: list[list[int]] = []
    all_completion_ids: list[list[int]] = []
    side = tok.padding_side
    tok.padding_side = "left"
    try:
        for start in range(0, len(prompts), batch_size):
            batch = tok(prompts[start : start + batch_size], padding=True, return_tensors="pt")
            batch = batch.to(policy.device)
            out = policy.generate(
                input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], generation_config=config
            )
            width = batch["input_ids"].shape[1]
            for row, mask in zip(out.tolist(), batch["attention_mask"].tolist(), strict=True):
                all_prompt_ids.append([t for t, m in zip(row[:width], mask, strict=True) if m])
                completion = row[width:]
                if tok.eos_token_id in completion:
                    completion = completion[: completion.index(tok.eos_token_id) + 1]
                all_completion_ids.append(completion)
    finally:
        tok.padding_side = side
    texts = tok.batch_decode(all_completion_ids, skip_special_tokens=True)
    return all_prompt_ids, all_completion_ids, texts


@dataclass
class PolicyEvaluator:
    tokenizer: Any
    reference: Any
    scorer: RewardScorer | None
    prompts: list[str]
    adversarial_prompts: list[str]
    max_new_tokens: int
    seed: int
    batch_size: int = 8
    prompt_max_tokens: int | None = None
    pairs: list[Pair] = field(default_factory=list)
    beta: float | None = None
    max_length: int | None = None

    def evaluate(self, policy: Any) -> dict[str, Any]:
        import torch

        if self.tokenizer.pad_token is None:  # as TRL does; the tokenizer saved with a model is a pristine copy
            self.tokenizer.pad_token = self.tokenizer.eos_token
        was_training = policy.training
        policy.eval()
        try:
            with torch.no_grad(), isolated_rng(self.seed):
                figures = self._figures(policy)
        finally:
            policy.train(was_training)
        return figures

    def _figures(self, policy: Any) -> dict[str, Any]:
        prompts = truncate_prompts(self.tokenizer, self.prompts, self.prompt_max_tokens)
        prompt_ids, completion_ids, texts = self._sample(policy, prompts)
        figures: dict[str, Any] = {
            "evaluation_prompts": len(prompts),
            "mean_completion_length": mean([len(t) for t in texts]),
            "kl_to_reference": self._kl(policy, prompt_ids, completion_ids),
        }
        if self.scorer is not None:
            rewards = self.scorer.score(prompts, texts)
            figures["mean_reward"] = mean(rewards)
            figures["length_reward_correlation"] = spearman([len(t) for t in texts], rewards)
            if self.adversarial_prompts:
                adversarial = truncate_prompts(self.tokenizer, self.adversarial_prompts, self.prompt_max_tokens)
                _, _, adversarial_texts = self._sample(policy, adversarial)
                figures["adversarial_mean_reward"] = mean(self.scorer.score(adversarial, adversarial_texts))
                figures["adversarial_prompts"] = len(adversarial)
        if self.pairs and self.beta is not None:
            figures["implicit_reward_accuracy"] = self._implicit_accuracy(policy)
        return {k: finite_or_none(v) if isinstance(v, float) else v for k, v in figures.items()}

    def _sample(self, policy: Any, prompts: list[str]) -> tuple[list[list[int]], list[list[int]], list[str]]:
        return sample_completions(
            policy, self.tokenizer, prompts, max_new_tokens=self.max_new_tokens, batch_size=self.batch_size
        )

    def _completion_logprobs(self, model: Any, prompt_ids: list[list[int]], completion_ids: list[list[int]]) -> Any:
        """Log-softmax over the vocabulary at each completion token (rows: the tokens of all completions in
        order), and those tokens."""
        import torch

        pad = self.tokenizer.pad_token_id
        width = max(len(p) + len(c) for p, c in zip(prompt_ids, completion_ids, strict=True))
        ids = torch.full((len(prompt_ids), width), pad, dtype=torch.long)
        attention = torch.zeros_like(ids)
        predicts = torch.zeros_like(ids, dtype=torch.bool)  # positions whose logits predict a completion token
        for i, (p, c) in enumerate(zip(prompt_ids, completion_ids, strict=True)):
            row = p + c
            ids[i, : len(row)] = torch.tensor(row)
            attention[i, : len(row)] = 1
            predicts[i, len(p) - 1 : len(row) - 1] = True
        logits = model(input_ids=ids.to(model.device), attention_mask=attention.to(model.device)).logits
        targets = torch.roll(ids, -1, dims=1)[predicts]
        return torch.log_softmax(logits[predicts.to(logits.device)].float(), dim=-1), targets.to(logits.device)

    def _kl(self, policy: Any, prompt_ids: list[list[int]], completion_ids: list[list[int]]) -> float | None:
        kept = [(p, c) for p, c in zip(prompt_ids, completion_ids, strict=True) if p and c]
        total, count = 0.0, 0
        for start in range(0, len(kept), self.batch_size):
            ps = [p for p, _ in kept[start : start + self.batch_size]]
            cs = [c for _, c in kept[start : start + self.batch_size]]
            policy_lp, _ = self._completion_logprobs(policy, ps, cs)
            reference_lp, _ = self._completion_logprobs(self.reference, ps, cs)
            per_token = (policy_lp.exp() * (policy_lp - reference_lp.to(policy_lp.device))).sum(-1)
            total += float(per_token.sum())
            count += int(per_token.numel())
        return total / count if count else None

    def _sequence_logps(self, model: Any, prompts: list[str], responses: list[str]) -> list[float]:
        """log p(response + eos | prompt), the completion starting where the tokenized prompt and
        prompt+response diverge and the whole cut to `max_length` tokens, as DPOTrainer tokenizes it."""
        import torch

        tok = self.tokenizer
        eos = tok.eos_token or ""
        prompt_ids, completion_ids = [], []
        for prompt, response in zip(prompts, responses, strict=True):
            p = tok(prompt)["input_ids"]
            full = tok(prompt + response + eos)["input_ids"][: self.max_length]
            shared = next((i for i, (a, b) in enumerate(zip(p, full, strict=False)) if a != b), min(len(p), len(full)))
            shared = max(1, min(shared, len(full) - 1))  # at least one token of context and of completion
            prompt_ids.append(full[:shared])
            completion_ids.append(full[shared:])
        logps: list[float] = []
        for start in range(0, len(prompts), self.batch_size):
            cs = completion_ids[start : start + self.batch_size]
            lp, targets = self._completion_logprobs(model, prompt_ids[start : start + self.batch_size], cs)
            per_token = lp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
            lengths = torch.tensor([len(c) for c in cs])
            logps += [float(chunk.sum()) for chunk in torch.split(per_token.cpu(), lengths.tolist())]
        return logps

    def _implicit_accuracy(self, policy: Any) -> float | None:
        prompts = [p.prompt for p in self.pairs]
        margins = []
        for responses in ([p.chosen for p in self.pairs], [p.rejected for p in self.pairs]):
            pol = self._sequence_logps(policy, prompts, responses)
            ref = self._sequence_logps(self.reference, prompts, responses)
            margins.append([a - b for a, b in zip(pol, ref, strict=True)])
        assert self.beta is not None
        wins = [self.beta * c > self.beta * r for c, r in zip(margins[0], margins[1], strict=True)]
        return mean([float(w) for w in wins])
