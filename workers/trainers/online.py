"""`rloo` and `grpo` runs: on-policy RL against a registered reward checkpoint, with TRL's RLOOTrainer
(REINFORCE leave-one-out, Ahmadian et al. 2024) and GRPOTrainer (Shao et al. 2024).

The reward of a completion is the reward checkpoint's score of `prompt + completion + eos`, the text it
was trained on (`reward_scoring`); `kl_coefficient` is TRL's `beta`, the weight of the KL to the
reference (the base model). The policy samples the train split's prompts, each once per pass, cut to
`max_length - max_completion_length` tokens. `ppo` is refused in `spec` where TRL no longer ships it.
"""

from __future__ import annotations

import shutil
from typing import Any

from workers.trainers.policy_evaluation import truncate_prompts
from workers.trainers.policy_run import CheckpointSeries, finish, load_reference, make_evaluator, prompt_budget
from workers.trainers.preference_data import load_preferences, to_dataset, unique_prompts
from workers.trainers.progress import RunProgress, silence
from workers.trainers.reward_scoring import RewardScorer
from workers.trainers.run_inputs import provenance, required_folder, start
from workers.trainers.spec import TrainJob, TrainResult, refuse_ppo
from workers.trainers.trl_config import build_config, config_dict


def _trainer_class(kind: str) -> Any:
    if kind == "rloo":
        from trl.trainer.rloo_trainer import RLOOTrainer

        return RLOOTrainer
    if kind == "grpo":
        from trl.trainer.grpo_trainer import GRPOTrainer

        return GRPOTrainer
    raise refuse_ppo()


def run(job: TrainJob) -> TrainResult:
    params = start(job)
    trainer_class = _trainer_class(job.kind)
    base = required_folder(job.base_model_dir, "base_model", job.kind)
    reward_dir = required_folder(job.reward_model_dir, "reward_checkpoint", job.kind)
    data = load_preferences(job.dataset_path, needs_pairs=False)

    from transformers import AutoTokenizer, PreTrainedModel

    scratch = job.output_dir / "trainer"
    config = build_config(job.kind, params, scratch)
    effective = config_dict(config)
    carried = provenance(job.kind, params, effective)
    # TRL generates from left-padded prompts.
    tokenizer = AutoTokenizer.from_pretrained(base, padding_side="left")
    budget = prompt_budget(params.get("max_length"), config.max_completion_length)
    train = to_dataset({"prompt": truncate_prompts(tokenizer, unique_prompts(data.train), budget)})
    scorer = RewardScorer.load(reward_dir, batch_size=config.per_device_eval_batch_size)
    progress = RunProgress(
        job, config.per_device_train_batch_size * config.gradient_accumulation_steps, params.get("checkpoint_every")
    )
    trainer = trainer_class(
        model=str(base),
        reward_funcs=scorer.as_reward_function(),
        args=config,
        train_dataset=train,
        processing_class=tokenizer,
        callbacks=[progress],
    )
    silence(trainer)
    reference = trainer.ref_model if isinstance(trainer.ref_model, PreTrainedModel) else load_reference(base)
    evaluator = make_evaluator(
        params,
        data,
        job,
        tokenizer,
        reference,
        scorer,
        max_new_tokens=config.max_completion_length,
        batch_size=config.per_device_eval_batch_size,
    )
    pristine = AutoTokenizer.from_pretrained(base)  # saved as it came: using a tokenizer changes its state
    series = CheckpointSeries(
        job, pristine, evaluator, carried, trainer.accelerator.unwrap_model, trainer.is_world_process_zero
    )
    progress.at_checkpoint = series
    output = trainer.train()
    shutil.rmtree(scratch, ignore_errors=True)
    return finish(job, trainer, output.training_loss, series, progress, effective, params, config.beta)
