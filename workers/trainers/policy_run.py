"""What dpo, rloo and grpo runs share: the checkpoint series, its evaluations, and the end of the run.

A checkpoint is saved every `checkpoint_every` steps into `<output_dir>/checkpoint-<step>`, evaluated
(`policy_evaluation`), and handed to `job.on_checkpoint`; the final model goes to `<output_dir>/final`.
Quality can peak early and then degrade, so the series, not the last step, is what a reviewer reads.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from workers.trainers.model_folders import save_model_folder
from workers.trainers.param_names import DEFAULT_SEED
from workers.trainers.policy_evaluation import PolicyEvaluator
from workers.trainers.preference_data import PreferenceData, unique_prompts
from workers.trainers.progress import RunProgress
from workers.trainers.reward_scoring import RewardScorer
from workers.trainers.spec import TrainJob, TrainResult

DEFAULT_EVAL_PROMPTS = 64
DEFAULT_EVAL_TOKENS = 64


class CheckpointSeries:
    """Saves, evaluates and hands over a checkpoint; on several devices, only in the process where
    `is_main()` (the trainer's `is_world_process_zero`), as all hold the same weights."""

    def __init__(
        self,
        job: TrainJob,
        tokenizer: Any,
        evaluator: PolicyEvaluator,
        carried: dict[str, Any],
        unwrap: Any,
        is_main: Callable[[], bool] = lambda: True,
    ) -> None:
        self.job, self.tokenizer, self.evaluator, self.carried, self.unwrap = job, tokenizer, evaluator, carried, unwrap
        self.is_main = is_main
        self.checkpoints: list[tuple[int, Path, dict[str, Any]]] = []

    def __call__(self, step: int, model: Any) -> None:
        if not self.is_main():
            return
        model = self.unwrap(model)
        folder = self.job.output_dir / f"checkpoint-{step}"
        save_model_folder(model, self.tokenizer, folder, {**self.carried, "step": step})
        metrics = {"step": step, **self.evaluator.evaluate(model)}
        self.checkpoints.append((step, folder, metrics))
        self.job.on_checkpoint(step, folder, metrics)


def load_reference(base: Path) -> Any:
    """The base model as the reference of KL figures, frozen, where the trainer keeps none of its own."""
    from transformers import AutoModelForCausalLM

    from workers.trainers.environment import device

    model: Any = AutoModelForCausalLM.from_pretrained(base, dtype="float32")
    model.to(device())
    model.eval()
    model.requires_grad_(False)
    return model


def make_evaluator(
    params: dict[str, Any],
    data: PreferenceData,
    job: TrainJob,
    tokenizer: Any,
    reference: Any,
    scorer: RewardScorer | None,
    *,
    max_new_tokens: int,
    batch_size: int,
    beta: float | None = None,
) -> PolicyEvaluator:
    limit = int(params.get("max_eval_prompts", DEFAULT_EVAL_PROMPTS))
    max_length = params.get("max_length")
    return PolicyEvaluator(
        tokenizer=tokenizer,
        reference=reference,
        scorer=scorer,
        prompts=unique_prompts(data.validation, limit),
        adversarial_prompts=list(dict.fromkeys(job.adversarial_prompts))[:limit],
        max_new_tokens=max_new_tokens,
        seed=int(params.get("seed", DEFAULT_SEED)),
        batch_size=batch_size,
        prompt_max_tokens=prompt_budget(max_length, max_new_tokens),
        pairs=data.validation[:limit] if beta is not None else [],
        beta=beta,
        max_length=max_length,
    )


def prompt_budget(max_length: int | None, max_new_tokens: int) -> int | None:
    """Prompt tokens that leave room for the completion within `max_length` (None: no limit)."""
    return None if max_length is None else max(1, max_length - max_new_tokens)


def finish(
    job: TrainJob,
    trainer: Any,
    training_loss: float,
    series: CheckpointSeries,
    progress: RunProgress,
    effective: dict[str, Any],
    params: dict[str, Any],
    kl_coefficient: float,
) -> TrainResult:
    """Save and evaluate the final model (reusing the last checkpoint's figures when it is that step)."""
    step = trainer.state.global_step
    common: dict[str, Any] = {
        "params": params,
        "kl_coefficient": kl_coefficient,
        "checkpoints": series.checkpoints,
    }
    versions = series.carried["library_versions"]
    train_figures = {"step": step, "train_loss": training_loss}
    if progress.stopped:
        return TrainResult(None, train_figures, effective, versions, stopped=True, **common)
    if not trainer.is_world_process_zero():
        return TrainResult(None, train_figures, effective, versions, **common)  # the first process saves
    model = trainer.accelerator.unwrap_model(trainer.model)
    final = save_model_folder(model, series.tokenizer, job.output_dir / "final", {**series.carried, "step": step})
    last = series.checkpoints[-1] if series.checkpoints else None
    figures = dict(last[2]) if last is not None and last[0] == step else series.evaluator.evaluate(model)
    figures.update(train_figures)
    return TrainResult(final, figures, effective, versions, **common)
