"""`reward_model` runs: a Bradley-Terry reward model trained with TRL's RewardTrainer.

The loss is -log sigmoid(r(chosen) - r(rejected)) (Bradley and Terry 1952; Ouyang et al. 2022, eq. 1).
After training, on the validation split: accuracy overall and per annotated dimension, accuracy on the
pairs whose chosen response is the shorter one (a reward model that learned "longer is better" fails
there), and Spearman's correlation of reward with response length.
"""

from __future__ import annotations

import shutil
from typing import Any

from app.core.errors import ValidationFailed
from workers.trainers.model_folders import save_model_folder
from workers.trainers.preference_data import Pair, load_preferences, to_dataset
from workers.trainers.progress import RunProgress, silence
from workers.trainers.reward_scoring import RewardScorer, mean, spearman
from workers.trainers.run_inputs import provenance, required_folder, start
from workers.trainers.spec import TrainJob, TrainResult
from workers.trainers.trl_config import build_config, config_dict


def reward_metrics(scorer: RewardScorer, pairs: list[Pair], dimensions: list[str]) -> dict[str, Any]:
    """Validation figures of a reward model; a figure with no pairs to measure it on is None.

    A pair counts as correct when r(chosen) > r(rejected) strictly. For a dimension, only pairs labelled
    `chosen` or `rejected` on it count, and the model agrees when it prefers the response the label names.
    Length is counted in characters.
    """
    prompts = [p.prompt for p in pairs]
    chosen = scorer.score(prompts, [p.chosen for p in pairs])
    rejected = scorer.score(prompts, [p.rejected for p in pairs])
    correct = [c > r for c, r in zip(chosen, rejected, strict=True)]
    per_dimension: dict[str, float | None] = {}
    per_dimension_pairs: dict[str, int] = {}
    for dim in dimensions:
        agree = [
            (c > r) if pair.dimensions[dim] == "chosen" else (r > c)
            for pair, c, r in zip(pairs, chosen, rejected, strict=True)
            if pair.dimensions.get(dim) in ("chosen", "rejected")
        ]
        per_dimension[dim] = mean([float(a) for a in agree])
        per_dimension_pairs[dim] = len(agree)
    shorter = [ok for pair, ok in zip(pairs, correct, strict=True) if len(pair.chosen) < len(pair.rejected)]
    lengths = [len(p.chosen) for p in pairs] + [len(p.rejected) for p in pairs]
    return {
        "validation_accuracy": mean([float(c) for c in correct]),
        "per_dimension": per_dimension,
        "per_dimension_pairs": per_dimension_pairs,
        "length_decoupled_accuracy": mean([float(ok) for ok in shorter]),
        "length_decoupled_pairs": len(shorter),
        "reward_length_spearman": spearman(lengths, chosen + rejected),
        "validation_pairs": len(pairs),
        "mean_margin": mean([c - r for c, r in zip(chosen, rejected, strict=True)]),
    }


def run(job: TrainJob) -> TrainResult:
    params = start(job)
    base = required_folder(job.base_model_dir, "base_model", job.kind)
    data = load_preferences(job.dataset_path)

    from transformers import AutoTokenizer
    from trl.trainer.reward_trainer import RewardTrainer

    scratch = job.output_dir / "trainer"
    config = build_config("reward_model", params, scratch)
    tokenizer = AutoTokenizer.from_pretrained(base)
    train = to_dataset(
        {
            "prompt": [p.prompt for p in data.train],
            "chosen": [p.chosen for p in data.train],
            "rejected": [p.rejected for p in data.train],
        }
    )
    progress = RunProgress(job, config.per_device_train_batch_size * config.gradient_accumulation_steps)
    # A path, not a loaded model: TRL seeds, then loads it with a fresh one-output score head.
    trainer = RewardTrainer(
        model=str(base), args=config, train_dataset=train, processing_class=tokenizer, callbacks=[progress]
    )
    silence(trainer)
    prepared: Any = trainer.train_dataset  # tokenized, and filtered to max_length
    if len(prepared) == 0:
        raise ValidationFailed(
            f"no training pair fits max_length={config.max_length} tokens",
            errors=[{"loc": ["params", "max_length"], "msg": "every pair is longer"}],
        )
    output = trainer.train()
    shutil.rmtree(scratch, ignore_errors=True)
    effective = config_dict(config)
    carried = provenance(job.kind, params, effective)
    train_figures = {
        "train_loss": output.training_loss,
        "train_pairs": len(prepared),
        "steps": trainer.state.global_step,
    }
    if progress.stopped:
        return TrainResult(None, train_figures, effective, carried["library_versions"], params=params, stopped=True)
    if not trainer.is_world_process_zero():  # several devices: the first process saves and measures
        return TrainResult(None, train_figures, effective, carried["library_versions"], params=params)
    model = trainer.accelerator.unwrap_model(trainer.model)
    # Saved as it came: using a tokenizer changes its state (padding and truncation settings).
    final = save_model_folder(model, AutoTokenizer.from_pretrained(base), job.output_dir / "final", carried)
    scorer = RewardScorer(model, tokenizer, max_length=config.max_length, batch_size=config.per_device_eval_batch_size)
    metrics = {**reward_metrics(scorer, data.validation, data.dimensions), **train_figures}
    return TrainResult(final, metrics, effective, carried["library_versions"], params=params)
